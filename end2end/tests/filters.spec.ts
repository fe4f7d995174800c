import { expect, test, type Page } from '@playwright/test';
import { applyFilter, cancelViaApi, deliver, FAILS, logIn, settle, shownIds, tag } from './support';

/** Six executions whose types and API versions are unique to this test, in four states. */
async function seed(request: Parameters<typeof deliver>[0]) {
  const t = tag();
  const alpha = `e2e.${t}.alpha`;
  const beta = `e2e.${t}.beta`;
  const v1 = `2020-01-01.${t}`;
  const v2 = `2030-01-01.${t}`;
  const later = 3600;
  const ids = {
    alphaTestV1: await deliver(request, { type: alpha, livemode: false, apiVersion: v1 }),
    alphaLiveV2: await deliver(request, { type: alpha, livemode: true, apiVersion: v2, createdIn: later }),
    betaTestV2: await deliver(request, { type: beta, livemode: false, apiVersion: v2 }),
    betaLiveV1: await deliver(request, { type: beta, livemode: true, apiVersion: v1, createdIn: later }),
    failedLiveV1: await deliver(request, { type: FAILS, livemode: true, apiVersion: v1 }),
    cancelledTestV1: await deliver(request, { type: alpha, livemode: false, apiVersion: v1, createdIn: later }),
  };
  await cancelViaApi(request, ids.cancelledTestV1);
  await settle(request, [ids.alphaTestV1, ids.betaTestV2], ['succeeded']);
  await settle(request, [ids.failedLiveV1], ['failed']);
  await settle(request, [ids.alphaLiveV2, ids.betaLiveV1], ['scheduled']);
  return { alpha, beta, v1, v2, ids };
}

const sorted = (xs: string[]) => [...xs].sort();

async function expectExactly(page: Page, ids: string[]) {
  expect(sorted(await shownIds(page))).toEqual(sorted(ids));
}

test('each filter and their combinations show exactly the matching executions', async ({ page, request }) => {
  const { alpha, beta, v1, v2, ids } = await seed(request);
  await logIn(page);
  const form = page.locator('form.filters');

  // Event type.
  await page.goto('/');
  await form.locator(`input[name="type"][value="${alpha}"]`).check();
  await applyFilter(page);
  await expectExactly(page, [ids.alphaTestV1, ids.alphaLiveV2, ids.cancelledTestV1]);

  // API version.
  await page.goto('/');
  await form.locator('select[name="api_version"]').selectOption(v2);
  await applyFilter(page);
  await expectExactly(page, [ids.alphaLiveV2, ids.betaTestV2]);

  // Livemode with API version.
  await page.goto('/');
  await form.locator('select[name="livemode"]').selectOption('true');
  await form.locator('select[name="api_version"]').selectOption(v1);
  await applyFilter(page);
  await expectExactly(page, [ids.betaLiveV1, ids.failedLiveV1]);

  // Status with two types.
  await page.goto('/');
  await form.locator(`input[name="type"][value="${alpha}"]`).check();
  await form.locator(`input[name="type"][value="${beta}"]`).check();
  await form.locator('input[name="status"][value="scheduled"]').check();
  await applyFilter(page);
  await expectExactly(page, [ids.alphaLiveV2, ids.betaLiveV1]);

  // Status with API version.
  await page.goto('/');
  await form.locator('select[name="api_version"]').selectOption(v1);
  await form.locator('input[name="status"][value="failed"]').check();
  await form.locator('input[name="status"][value="cancelled"]').check();
  await applyFilter(page);
  await expectExactly(page, [ids.failedLiveV1, ids.cancelledTestV1]);
});

test('livemode alone and status alone keep only matching rows', async ({ page, request }) => {
  const { ids } = await seed(request);
  await logIn(page);
  const form = page.locator('form.filters');

  await form.locator('select[name="livemode"]').selectOption('false');
  await applyFilter(page);
  const shown = await shownIds(page);
  expect(shown).toEqual(expect.arrayContaining([ids.alphaTestV1, ids.betaTestV2, ids.cancelledTestV1]));
  for (const id of [ids.alphaLiveV2, ids.betaLiveV1, ids.failedLiveV1]) expect(shown).not.toContain(id);
  // A Connect execution names its account after the mode, in the same cell.
  for (const mode of await page.locator('tr.execution td.mode').allTextContents()) expect(mode).toMatch(/^test(acct_|$)/);

  await page.goto('/');
  await form.locator('input[name="status"][value="cancelled"]').check();
  await applyFilter(page);
  expect(await shownIds(page)).toContain(ids.cancelledTestV1);
  for (const state of await page.locator('tr.execution td .state').allTextContents()) expect(state).toBe('cancelled');
});

test('the filter round-trips through the URL and the counts follow it', async ({ page, request }) => {
  const { alpha, beta, v1, ids } = await seed(request);
  await logIn(page);
  const form = page.locator('form.filters');
  await form.locator(`input[name="type"][value="${alpha}"]`).check();
  await form.locator(`input[name="type"][value="${beta}"]`).check();
  await form.locator('select[name="livemode"]').selectOption('false');
  await applyFilter(page);

  const url = new URL(page.url());
  expect(url.searchParams.getAll('type').sort()).toEqual([alpha, beta].sort());
  expect(url.searchParams.get('livemode')).toBe('false');
  await expectExactly(page, [ids.alphaTestV1, ids.betaTestV2, ids.cancelledTestV1]);
  await expect(page.locator('li[data-state="succeeded"] .count')).toHaveText('2');
  await expect(page.locator('li[data-state="cancelled"] .count')).toHaveText('1');
  await expect(page.locator('li[data-state="scheduled"] .count')).toHaveText('0');

  // The same URL opened afresh (a bookmark, a shared link) shows the same view and form.
  const page2 = await page.context().newPage();
  await page2.goto(url.pathname + url.search);
  const shown = sorted(await shownIds(page));
  await expect.poll(async () => sorted(await shownIds(page2))).toEqual(shown);
  await expect(page2.locator(`input[name="type"][value="${alpha}"]`)).toBeChecked();
  await expect(page2.locator(`input[name="type"][value="${beta}"]`)).toBeChecked();
  await expect(page2.locator('select[name="livemode"]')).toHaveValue('false');

  // A URL written by hand with the REST names works the same.
  await page2.goto(`/?api_version=${v1}&status=failed`);
  await expectExactly(page2, [ids.failedLiveV1]);
  await page2.close();
});
