import { expect, test } from '@playwright/test';
import { deliver, FAILS, logIn, settle, SUCCEEDS, tag } from './support';

test('the detail page shows the attempts and the payload as text, never as markup', async ({ page, request, javaScriptEnabled }) => {
  const hostile = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2"><b>bold</b>';
  const id = await deliver(request, { type: SUCCEEDS(tag()), object: { description: hostile } });
  await settle(request, [id], ['succeeded']);
  await logIn(page);
  await page.goto('/');
  await page.locator(`tr.execution[data-id="${id}"] td.event a`).click();
  await expect(page).toHaveURL(new RegExp(`/executions/${id}$`));

  await expect(page.locator('#state')).toHaveText('succeeded');
  const payload = page.locator('pre.payload');
  await expect(payload).toContainText(hostile.replaceAll('"', '\\"'));
  await expect(payload.locator('script, img, b')).toHaveCount(0);
  if (javaScriptEnabled) {
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  }
  const attempts = page.locator('table.attempts tbody tr');
  await expect(attempts).toHaveCount(1);
  await expect(attempts.first().locator('td.outcome')).toHaveText('succeeded');
});

test('a failed execution shows its failed attempt and the error', async ({ page, request }) => {
  const id = await deliver(request, { type: FAILS, object: { object: 'dispute' } });
  await settle(request, [id], ['failed']);
  await logIn(page, `/executions/${id}`);
  await expect(page.locator('#state')).toHaveText('failed');
  const attempt = page.locator('table.attempts tbody tr').first();
  await expect(attempt.locator('td.outcome')).toHaveText('error');
  await expect(attempt.locator('td.message')).not.toBeEmpty();
  await expect(page.locator('p.last-error')).toBeVisible();
});

test('an unknown execution says so', async ({ page }) => {
  await logIn(page, '/executions/exe_does_not_exist');
  await expect(page.getByRole('alert')).toHaveText('no execution `exe_does_not_exist`');
});
