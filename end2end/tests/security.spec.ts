import { expect, test, type Page } from '@playwright/test';
import { BASE_URL, CONSOLE_PASSWORD, VIEWER_PASSWORD } from '../env';
import { deliver, execution, SUCCEEDS, tag } from './support';

/** Collects what the browser reports as a CSP violation or a console error. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}

async function logInAs(page: Page, password: string, path: string): Promise<void> {
  await page.goto(path);
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
}

test('the login flow works under the CSP, with no violation', async ({ page, javaScriptEnabled }) => {
  const problems = watchConsole(page);
  const resp = await page.goto('/login');
  const csp = resp!.headers()['content-security-policy'];
  expect(csp).toContain("'wasm-unsafe-eval'");
  expect(csp).toContain("frame-ancestors 'none'");
  if (javaScriptEnabled) {
    // The wasm loaded and ran: the inline hydration script carried the nonce.
    await page.locator('body[data-hydrated="true"]').waitFor();
  }
  await logInAs(page, CONSOLE_PASSWORD, '/?status=failed');
  await expect(page).toHaveURL(/\/\?status=failed$/);
  await expect(page.getByRole('heading', { name: 'Executions' })).toBeVisible();
  await page.goto('/audit');
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  expect(problems, problems.join('\n')).toEqual([]);
});

test('a viewer sees no action buttons, and a forged action is refused', async ({ page, request }) => {
  const id = await deliver(request, { type: SUCCEEDS(tag()), createdIn: 3600 });
  await logInAs(page, VIEWER_PASSWORD, `/executions/${id}`);
  await expect(page.locator('#state')).toHaveText('scheduled');
  await expect(page.getByRole('button', { name: 'Cancel' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Retry now' })).toHaveCount(0);
  await page.goto('/');
  await expect(page.locator('.bulk-links')).toHaveCount(0);
  // Nor Pause or Resume, on the list or the event types.
  await expect(page.locator('form.action-pause, form.action-resume')).toHaveCount(0);
  await page.goto('/event-types');
  await expect(page.getByRole('heading', { name: 'Event types' })).toBeVisible();
  await expect(page.locator('form.action-pause, form.action-resume, form.pause-pattern')).toHaveCount(0);

  // The viewer's own session, posting what the operator's form would.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'deferral_session')!;
  const forged = await request.post(`${BASE_URL}/console/fn/act`, {
    form: { id, action: 'cancel' },
    headers: { Cookie: `deferral_session=${session.value}` },
  });
  expect(forged.status()).toBe(403);
  expect((await execution(request, id)).state).toBe('scheduled');
});
