// Seeding through the real webhook endpoint (signed as Stripe signs), reading states through
// the REST API, and logging in through the console's own form.
import { createHmac, randomBytes } from 'node:crypto';
import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { API_TOKEN, BASE_URL, CONSOLE_PASSWORD, WEBHOOK_SECRET } from '../env';

/// A short random tag: keeps each test's events apart in the shared database.
export function tag(): string {
  return randomBytes(4).toString('hex');
}

export interface EventSpec {
  id?: string;
  type: string;
  livemode?: boolean;
  apiVersion?: string;
  objectId?: string;
  /** Seconds from now; in the future the execution stays scheduled. */
  createdIn?: number;
  object?: Record<string, unknown>;
  /** A Connect event's connected account (`acct_…`), sent as Stripe sends it: top-level `account`. */
  account?: string;
}

/** Stripe's signature header: `t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`. */
export function signature(body: string, secret = WEBHOOK_SECRET, t = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** Delivers one event to POST /webhooks/stripe (of the server at `base`); returns the execution id. */
export async function deliver(request: APIRequestContext, spec: EventSpec, base = BASE_URL): Promise<string> {
  const id = spec.id ?? `evt_${tag()}${tag()}`;
  const objectId = spec.objectId ?? `obj_${tag()}`;
  const body = JSON.stringify({
    id,
    object: 'event',
    api_version: spec.apiVersion ?? '2024-06-20',
    created: Math.floor(Date.now() / 1000) + (spec.createdIn ?? 0),
    livemode: spec.livemode ?? false,
    type: spec.type,
    data: { object: { id: objectId, object: 'thing', ...spec.object } },
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    ...(spec.account ? { account: spec.account } : {}),
  });
  const resp = await request.post(`${base}/webhooks/stripe`, {
    data: body,
    headers: { 'Stripe-Signature': signature(body), 'Content-Type': 'application/json' },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  return (await resp.json()).execution_id;
}

/** An execution as the REST API answers it. */
export async function execution(
  request: APIRequestContext,
  id: string,
  base = BASE_URL,
): Promise<{ state: string; [k: string]: unknown }> {
  const resp = await request.get(`${base}/api/v1/executions/${id}`, {
    headers: { Authorization: `Bearer ${API_TOKEN}` },
  });
  expect(resp.status()).toBe(200);
  return resp.json();
}

/** Waits until every execution reached one of `states`. */
export async function settle(request: APIRequestContext, ids: string[], states: string[]): Promise<void> {
  for (const id of ids) {
    await expect.poll(async () => (await execution(request, id)).state, { timeout: 15_000 }).toMatch(
      new RegExp(`^(${states.join('|')})$`),
    );
  }
}

/** Cancels through the REST API (a second operator acting meanwhile). */
export async function cancelViaApi(request: APIRequestContext, id: string): Promise<void> {
  const resp = await request.post(`${BASE_URL}/api/v1/executions/${id}/cancel`, {
    headers: { Authorization: `Bearer ${API_TOKEN}` },
  });
  expect(resp.status(), await resp.text()).toBe(200);
}

/**
 * Kinds of execution by how they end: a type without a handler succeeds; a dispute whose
 * object is malformed fails permanently (handlers treat a malformed object as permanent).
 */
export const SUCCEEDS = (t: string) => `e2e.${t}.noted`;
export const FAILS = 'charge.dispute.created';

/** Logs in through the login form, from wherever the console sent us. */
export async function logIn(page: Page, path = '/'): Promise<void> {
  await page.goto(path);
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel('Password').fill(CONSOLE_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
}

/** Waits for the wasm to have hydrated the page (only with JavaScript on). */
export async function hydrated(page: Page): Promise<void> {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

/** The ids of the executions shown in the list. */
export async function shownIds(page: Page): Promise<string[]> {
  // One read of every row at once: counting then reading row by row races a re-render.
  return page.locator('tr.execution').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id') ?? ''));
}

/** Submits the filter form (a client-side navigation with JavaScript, a GET without). */
export async function applyFilter(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/\/\?/);
  await page.locator('section.executions table, section.executions p.empty').first().waitFor();
}
