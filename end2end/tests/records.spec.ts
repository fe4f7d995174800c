import { expect, test, type Page } from '@playwright/test';
import { BASE_URL } from '../env';
import { deliver, FAILS, logIn, settle, tag } from './support';

/** The ids of the records a records page shows. */
async function recordIds(page: Page): Promise<string[]> {
  return page.locator('tr.record').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id') ?? ''));
}

/** Submits a records filter form (client-side navigation with JavaScript, a GET without). */
async function apply(page: Page, kind: string): Promise<void> {
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(new RegExp(`/records/${kind}\\?`));
  await page.locator('section.records table, section.records p.empty').first().waitFor();
}

/** Customers, subscriptions, failures and notifications made by real events, unique to this run. */
async function seed(request: Parameters<typeof deliver>[0]) {
  const t = tag();
  const c = { plain: `cus_p${t}`, late: `cus_l${t}`, gone: `cus_g${t}` };
  const customer = (id: string, type: string, extra: Record<string, unknown>) =>
    deliver(request, { type, objectId: id, object: { object: 'customer', email: `${id}@example.com`, ...extra } });
  const ids = [
    await customer(c.plain, 'customer.created', { delinquent: false, deleted: false }),
    await customer(c.late, 'customer.created', { delinquent: true }),
    await customer(c.gone, 'customer.deleted', { delinquent: false, deleted: true }),
    await deliver(request, {
      type: 'customer.subscription.created',
      objectId: `sub_a${t}`,
      object: { object: 'subscription', customer: c.plain, status: 'active', items: { data: [] } },
    }),
    await deliver(request, {
      type: 'customer.subscription.created',
      objectId: `sub_d${t}`,
      object: { object: 'subscription', customer: c.late, status: 'past_due', items: { data: [] } },
    }),
    await deliver(request, {
      type: 'charge.failed',
      objectId: `ch_f${t}`,
      object: { object: 'charge', customer: c.late, amount: 2900, currency: 'usd', failure_code: 'card_declined', outcome: { reason: 'insufficient_funds' } },
    }),
    await deliver(request, {
      type: 'charge.failed',
      objectId: `ch_e${t}`,
      object: { object: 'charge', customer: c.plain, amount: 1500, currency: 'usd', failure_code: 'expired_card', outcome: { reason: 'expired_card' } },
    }),
    await deliver(request, {
      type: 'invoice.upcoming',
      objectId: `in_u${t}`,
      object: { object: 'invoice', customer: c.plain, amount_due: 2900, currency: 'usd' },
    }),
  ];
  await settle(request, ids, ['succeeded']);
  return { t, c };
}

test('each records page filters in the URL and links to the object timeline', async ({ page, request }) => {
  const { t, c } = await seed(request);
  await logIn(page, '/records/customers');

  // Customers: delinquent, deleted.
  await page.locator('select[name="delinquent"]').selectOption('true');
  await page.locator('input[name="q"]').fill(`${c.late}@example.com`);
  await apply(page, 'customers');
  expect(await recordIds(page)).toEqual([c.late]);
  await page.goto(`/records/customers?deleted=true&q=${c.gone}`);
  expect(await recordIds(page)).toEqual([c.gone]);

  // Subscriptions by status.
  await page.goto('/records/subscriptions');
  await page.locator('select[name="status"]').selectOption('past_due');
  await page.locator('input[name="customer"]').fill(c.late);
  await apply(page, 'subscriptions');
  expect(await recordIds(page)).toEqual([`sub_d${t}`]);

  // Payment failures by reason and customer: the reason is shown.
  await page.goto('/records/payment-failures');
  await page.locator('select[name="reason"]').selectOption('insufficient_funds');
  await page.locator('input[name="customer"]').fill(c.late);
  await apply(page, 'payment-failures');
  expect(await recordIds(page)).toEqual([`ch_f${t}`]);
  await expect(page.locator('tr.record td.reason')).toHaveText('insufficient_funds');
  await page.goto(`/records/payment-failures?reason=expired_card&customer=${c.late}`);
  await expect(page.locator('section.records p.empty')).toBeVisible();

  // Notifications: pending, by kind.
  await page.goto(`/records/notifications?kind=upcoming_charge&status=pending&customer=${c.plain}`);
  expect((await recordIds(page)).length).toBe(1);
  await page.goto(`/records/notifications?status=sent&customer=${c.plain}`);
  await expect(page.locator('section.records p.empty')).toBeVisible();

  // Disputes: open ones (none here for this customer), and a bad value is explained.
  await page.goto(`/records/disputes?state=open&customer=${c.plain}`);
  await expect(page.locator('section.records p.empty')).toBeVisible();
  await page.goto('/records/disputes?state=ajar');
  await expect(page.getByRole('alert')).toContainText('invalid state');

  // From a record to its timeline.
  await page.goto(`/records/customers?q=${c.late}`);
  await page.locator(`tr.record a[href="/objects/${c.late}"]`).click();
  await expect(page).toHaveURL(new RegExp(`/objects/${c.late}$`));
  await expect(page.locator('ol.timeline li.entry')).toHaveCount(1);
});

/** A dispute as Stripe sends it in `charge.dispute.*` events (the fields of Stripe's dispute object). */
function dispute(t: string, status: string) {
  const created = Math.floor(Date.now() / 1000) - 3600;
  return {
    object: 'dispute', amount: 2900, balance_transactions: [], charge: `ch_${t}`, created, currency: 'usd',
    evidence_details: { due_by: created + 8 * 86_400, has_evidence: false, past_due: false, submission_count: 0 },
    is_charge_refundable: false, livemode: false, metadata: {}, payment_intent: `pi_${t}`, reason: 'fraudulent', status,
  };
}

test('the disputes page filters real disputes by open or closed and by outcome', async ({ page, request }) => {
  const t = tag();
  const d = { open: `dp_o${t}`, won: `dp_w${t}`, lost: `dp_l${t}` };
  const ids = [
    await deliver(request, { type: 'charge.dispute.created', objectId: d.open, object: dispute(t, 'needs_response') }),
    // Opened, then closed in the merchant's favour a minute later.
    await deliver(request, { type: 'charge.dispute.created', objectId: d.won, createdIn: -60, object: dispute(t, 'needs_response') }),
    await deliver(request, { type: 'charge.dispute.closed', objectId: d.won, object: dispute(t, 'won') }),
    await deliver(request, { type: 'charge.dispute.closed', objectId: d.lost, object: dispute(t, 'lost') }),
  ];
  await settle(request, ids, ['succeeded']);
  const mine = async () => (await recordIds(page)).filter((id) => id.endsWith(t)).sort();

  await logIn(page, '/records/disputes');
  expect(await mine()).toEqual(Object.values(d).sort());
  await page.locator('select[name="state"]').selectOption('open');
  await apply(page, 'disputes');
  expect(await mine()).toEqual([d.open]);
  await expect(page.locator(`tr.record[data-id="${d.open}"] td.hold`)).toHaveText('open');

  await page.locator('select[name="state"]').selectOption('closed');
  await page.locator('select[name="outcome"]').selectOption('won');
  await apply(page, 'disputes');
  const url = new URL(page.url());
  expect([url.searchParams.get('state'), url.searchParams.get('outcome')]).toEqual(['closed', 'won']);
  expect(await mine()).toEqual([d.won]);
  await expect(page.locator(`tr.record[data-id="${d.won}"] td.outcome`)).toHaveText('won');
  await expect(page.locator(`tr.record[data-id="${d.won}"] td.hold`)).toHaveText('closed');

  await page.goto('/records/disputes?outcome=lost');
  expect(await mine()).toEqual([d.lost]);
  // An open dispute has no outcome yet.
  await page.goto('/records/disputes?state=open&outcome=won');
  await expect(page.locator('section.records p.empty')).toBeVisible();
});

test('the object timeline shows events in created order, whatever their arrival', async ({ page, request }) => {
  const id = `cus_t${tag()}`;
  const base = { type: 'customer.updated', objectId: id };
  // Arrival order: newest, oldest, middle. createdIn is relative to now (seconds, negative: past).
  const newest = await deliver(request, { ...base, createdIn: -10, object: { object: 'customer', name: 'Newest' } });
  const oldest = await deliver(request, { ...base, type: 'customer.created', createdIn: -300, object: { object: 'customer', name: 'Oldest' } });
  const middle = await deliver(request, { ...base, createdIn: -100, object: { object: 'customer', name: 'Middle' } });
  await settle(request, [newest, oldest, middle], ['succeeded']);
  await logIn(page, `/objects/${id}`);
  const shown = await page.locator('ol.timeline li.entry').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  expect(shown).toEqual([oldest, middle, newest]);
  // The current record is the newest event's.
  await expect(page.locator('.current-record td.name')).toHaveText('Newest');
  // The list links to the same timeline.
  await page.goto(`/?q=${id}`);
  await page.locator(`tr.execution a[href="/objects/${id}"]`).first().click();
  await expect(page).toHaveURL(new RegExp(`/objects/${id}$`));
});

test('the overview chart is in the server HTML and the list says why an execution failed', async ({ page, request }) => {
  const failed = await deliver(request, { type: FAILS });
  await settle(request, [failed], ['failed']);
  await logIn(page);
  // The server's HTML itself (no script involved) holds the chart.
  const html = await (await page.request.get(`${BASE_URL}/`)).text();
  expect(html).toMatch(/<svg [^>]*class="chart"/);
  expect(html).toMatch(/<g [^>]*class="bar"/);
  await page.goto('/?chart=7d');
  await expect(page.locator('svg.chart g.bar')).toHaveCount(28);
  await page.goto(`/?q=${failed}`);
  const error = page.locator(`tr.execution[data-id="${failed}"] .last-error`);
  await expect(error).toBeVisible();
  expect((await error.textContent())?.length).toBeGreaterThan(5);
});

for (const width of [1280, 390]) {
  test(`no horizontal scroll at ${width} px`, async ({ page, request }) => {
    // Long ids and an error message: what made the list overflow.
    const failed = await deliver(request, { type: FAILS, objectId: `dp_${tag()}${tag()}${tag()}${tag()}` });
    await settle(request, [failed], ['failed']);
    await page.setViewportSize({ width, height: 900 });
    await logIn(page);
    for (const path of ['/', '/?status=failed', `/executions/${failed}`, '/records/customers', '/records/payment-failures', '/records/notifications']) {
      await page.goto(path);
      await page.locator('main').waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${path} at ${width} px`).toBeLessThanOrEqual(0);
    }
  });
}
