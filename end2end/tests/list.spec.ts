import { expect, test } from '@playwright/test';
import { STRIPE_DOWN_URL } from '../env';
import { applyFilter, deliver, execution, hydrated, logIn, settle, shownIds, tag } from './support';

test('the type filter groups 200+ types by resource, narrows them by search and filters by the one chosen', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(120_000);
  const t = tag();
  // 21 resources of 10 types each, one execution per type: more types than Stripe has.
  const type = (g: number, k: number) => `e2e${t}g${g}.thing${k}`;
  const ids = new Map<string, string>();
  for (let g = 0; g < 21; g++) {
    for (let k = 0; k < 10; k++) ids.set(type(g, k), await deliver(request, { type: type(g, k) }));
  }
  const chosen = type(7, 3);
  await settle(request, [ids.get(chosen)!], ['succeeded']);
  await logIn(page);
  const filter = page.locator('fieldset.types');
  const present = Number((await filter.locator('legend').textContent())?.match(/\((\d+) present\)/)?.[1]);
  expect(present).toBeGreaterThanOrEqual(210);
  // Grouped by resource, each group saying how many types and executions it holds.
  const group = filter.locator('details.type-group', { hasText: `e2e${t}g7 (` });
  await expect(group.locator('summary')).toHaveText(`e2e${t}g7 (10 types, 10 executions)`);
  // With this many types the groups start closed: the list stays short.
  await expect(group).not.toHaveAttribute('open', /.*/);
  const box = filter.locator(`input[name="type"][value="${chosen}"]`);
  await expect(box).toBeHidden();

  if (testInfo.project.use.javaScriptEnabled) {
    await hydrated(page);
    const search = filter.getByRole('searchbox', { name: 'Search event types' });
    // The resource: its ten types and no other group.
    await search.fill(`${t}g7.`);
    await expect(filter.locator('label.check:visible')).toHaveCount(10);
    await expect(filter.locator('details.type-group:visible')).toHaveCount(1);
    // One type.
    await search.fill(chosen);
    await expect(filter.locator('label.check:visible')).toHaveCount(1);
    await expect(box).toBeVisible();
  } else {
    // No script, no search box: the group opens as any <details> does.
    await expect(filter.getByRole('searchbox')).toBeHidden();
    await group.locator('summary').click();
    await expect(box).toBeVisible();
    await expect(group.locator('label.check:visible')).toHaveCount(10);
  }
  await box.check();
  await applyFilter(page);
  expect(new URL(page.url()).searchParams.getAll('type')).toEqual([chosen]);
  expect(await shownIds(page)).toEqual([ids.get(chosen)]);
  // The chosen type stays in sight, checked, in its open group.
  await expect(page.locator(`fieldset.types input[name="type"][value="${chosen}"]`)).toBeChecked();
  await expect(page.locator(`fieldset.types input[name="type"][value="${chosen}"]`)).toBeVisible();
});

test('times are relative, with the exact UTC time on hover, and the time zone is stated', async ({ page, request }) => {
  // Created three hours and ten minutes ahead: it waits, due in about 3 h.
  const id = await deliver(request, { type: `e2e.${tag()}.noted`, createdIn: 3 * 3600 + 600 });
  await settle(request, [id], ['scheduled']);
  const due = String((await execution(request, id)).next_run_at);
  await logIn(page, `/?q=${id}`);
  const row = page.locator(`tr.execution[data-id="${id}"]`);
  const time = row.locator('td[data-label="Scheduled for"] time');
  await expect(time).toHaveText('in 3 h');
  await time.hover();
  const exact = `${new Date(due).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  await expect(time).toHaveAttribute('title', exact);
  await expect(time).toHaveAttribute('datetime', due);
  await expect(page.locator('table.executions-table caption')).toContainText('(UTC)');
});

test('the list shows only the Connect account asked for, kept in the URL across a reload', async ({ page, request }) => {
  const t = tag();
  const mine = `acct_${t}A`;
  const type = `e2e.${t}.noted`;
  const ids = [
    await deliver(request, { type, account: mine }),
    await deliver(request, { type, account: mine }),
  ];
  const others = [await deliver(request, { type, account: `acct_${t}B` }), await deliver(request, { type })];
  await settle(request, [...ids, ...others], ['succeeded']);
  await logIn(page, `/?type=${type}`);
  expect((await shownIds(page)).sort()).toEqual([...ids, ...others].sort());

  await page.locator('form.filters input[name="account"]').fill(mine);
  await applyFilter(page);
  expect(new URL(page.url()).searchParams.get('account')).toBe(mine);
  expect((await shownIds(page)).sort()).toEqual([...ids].sort());
  for (const shown of await page.locator('tr.execution small.account').allTextContents()) expect(shown).toBe(mine);

  await page.reload();
  await page.locator('section.executions table').waitFor();
  expect((await shownIds(page)).sort()).toEqual([...ids].sort());
  await expect(page.locator('form.filters input[name="account"]')).toHaveValue(mine);
});

test('a retrying execution says in the list what went wrong last', async ({ page, request }) => {
  // On the server whose Stripe API is down: the first attempt fails, the next is a minute away.
  const id = await deliver(request, { type: 'customer.created', objectId: `cus_${tag()}` }, STRIPE_DOWN_URL);
  await expect
    .poll(async () => {
      const e = await execution(request, id, STRIPE_DOWN_URL);
      return `${e.state} ${e.attempts}`;
    }, { timeout: 15_000 })
    .toBe('scheduled 1');
  const lastError = String((await execution(request, id, STRIPE_DOWN_URL)).last_error);
  expect(lastError.length).toBeGreaterThan(5);
  await logIn(page, `${STRIPE_DOWN_URL}/?q=${id}`);
  const row = page.locator(`tr.execution[data-id="${id}"]`);
  await expect(row.locator('.state')).toHaveText('scheduled');
  await expect(row.locator('td.attempts')).toHaveText(/^1\//);
  const error = row.locator('.last-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveText(lastError);
});
