import { expect, test, type Page } from '@playwright/test';
import { applyFilter, cancelViaApi, deliver, logIn, settle, shownIds, SUCCEEDS, tag } from './support';

/** Reloads until the detail page shows `state` (the executor works in the background). */
async function expectState(page: Page, state: string) {
  await expect
    .poll(
      async () => {
        await page.reload();
        return page.locator('#state').textContent();
      },
      { timeout: 15_000 },
    )
    .toBe(state);
}

test('retry now runs a scheduled execution at once', async ({ page, request }) => {
  const id = await deliver(request, { type: SUCCEEDS(tag()), createdIn: 3600 });
  await logIn(page, `/executions/${id}`);
  await expect(page.locator('#state')).toHaveText('scheduled');
  await expect(page.locator('dd.next-run')).toBeVisible();
  await page.getByRole('button', { name: 'Retry now' }).click();
  await expect(page.getByRole('status')).toContainText('Retry requested');
  await expectState(page, 'succeeded');
  await expect(page.locator('table.attempts tbody tr')).toHaveCount(1);
});

test('cancel stops a scheduled execution', async ({ page, request }) => {
  const id = await deliver(request, { type: SUCCEEDS(tag()), createdIn: 3600 });
  await logIn(page, `/executions/${id}`);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('status')).toContainText('Cancelled');
  await expect(page.locator('#state')).toHaveText('cancelled');
  await expect(page.getByRole('button', { name: 'Re-run' })).toBeVisible();
});

test('re-run creates a new execution linked to the original', async ({ page, request }) => {
  const id = await deliver(request, { type: SUCCEEDS(tag()) });
  await settle(request, [id], ['succeeded']);
  await logIn(page, `/executions/${id}`);
  await page.getByRole('button', { name: 'Re-run' }).click();
  await expect(page.getByRole('status')).toContainText('Re-run created');
  await expect(page).not.toHaveURL(new RegExp(`/executions/${id}\\b`));
  const rerun = new URL(page.url()).pathname.split('/').pop()!;
  await expect(page.locator('dl.meta')).toContainText(`Re-run of${id}`);
  await expectState(page, 'succeeded');

  await page.goto(`/executions/${id}`);
  await expect(page.locator('ul.reruns a')).toHaveText(rerun);
});

test('a refused action shows why and changes nothing', async ({ page, request }) => {
  const id = await deliver(request, { type: SUCCEEDS(tag()), createdIn: 3600 });
  await logIn(page, `/executions/${id}`);
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeVisible();
  // Another operator cancels it meanwhile; this page still offers the button.
  await cancelViaApi(request, id);
  await page.getByRole('button', { name: 'Retry now' }).click();
  await expect(page.getByRole('alert')).toHaveText('cannot retry: the execution is cancelled');
  await expect(page.locator('#state')).toHaveText('cancelled');
});

test('bulk re-run and cancel by filter, after a confirmation stating how many', async ({ page, request }) => {
  const type = SUCCEEDS(tag());
  const done = [await deliver(request, { type }), await deliver(request, { type }), await deliver(request, { type })];
  const waiting = [await deliver(request, { type, createdIn: 3600 }), await deliver(request, { type, createdIn: 3600 })];
  await settle(request, done, ['succeeded']);
  await logIn(page);
  await page.locator(`input[name="type"][value="${type}"]`).check();
  await applyFilter(page);
  await expect(page.locator('tr.execution')).toHaveCount(5);

  await page.getByRole('link', { name: 'Re-run all…' }).click();
  await expect(page.locator('p.confirm')).toHaveText('Re-run 3 executions matching this filter?');
  await page.getByRole('button', { name: 'Re-run 3 executions' }).click();
  await expect(page.getByRole('status')).toHaveText('Re-ran 3 executions.');
  await expect(page.locator('tr.execution')).toHaveCount(8);
  expect(await shownIds(page)).toEqual(expect.arrayContaining([...done, ...waiting]));

  await page.getByRole('link', { name: 'Cancel all…' }).click();
  // The two waiting ones, plus re-runs that have not started yet.
  const question = await page.locator('p.confirm').textContent();
  const n = Number(question!.match(/^Cancel (\d+) executions? matching this filter\?$/)![1]);
  expect(n).toBeGreaterThanOrEqual(2);
  await page.getByRole('button', { name: /^Cancel \d+ execution/ }).click();
  await expect(page.getByRole('status')).toContainText(/^Cancelled \d+ executions\./);
  await settle(request, waiting, ['cancelled']);
});
