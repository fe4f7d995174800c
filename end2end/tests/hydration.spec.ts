import { expect, test } from '@playwright/test';
import { deliver, hydrated, logIn, SUCCEEDS, tag } from './support';

test.describe('hydration', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'needs the wasm bundle');

  test('the auto-refresh toggle only responds once the wasm has hydrated the page', async ({ page }) => {
    await logIn(page);
    // The server-rendered page has the button, but nothing in it reacts before hydration.
    const html = await (await page.request.get('/')).text();
    expect(html).toContain('Auto-refresh: off');
    expect(html).not.toContain('data-hydrated');

    await hydrated(page);
    const toggle = page.getByRole('button', { name: /Auto-refresh/ });
    await toggle.click();
    await expect(toggle).toHaveText('Auto-refresh: on');
    await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  });

  test('auto-refresh shows new executions without losing the filter', async ({ page, request }) => {
    const t = tag();
    const type = SUCCEEDS(t);
    await deliver(request, { type });
    await logIn(page, `/?type=${type}`);
    await hydrated(page);
    await expect(page.locator('tr.execution')).toHaveCount(1);
    await page.getByRole('button', { name: /Auto-refresh/ }).click();
    const url = page.url();

    const second = await deliver(request, { type });
    await expect(page.locator(`tr.execution[data-id="${second}"]`)).toBeVisible({ timeout: 10_000 });
    await expect(page.locator('tr.execution')).toHaveCount(2);
    expect(page.url()).toBe(url);
    await expect(page.locator(`input[name="type"][value="${type}"]`)).toBeChecked();
  });
});
