import { expect, test } from '@playwright/test';
import { CONSOLE_PASSWORD } from '../env';

test('every console page asks for the password first, and logging out ends the session', async ({ page }) => {
  for (const path of ['/', '/executions/exe_unknown', '/bulk?action=rerun']) {
    await page.goto(path);
    await expect(page).toHaveURL(/\/login\?next=/);
    await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
  }

  // A wrong password is refused on the page.
  await page.goto('/?status=failed');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('wrong password');

  // The right one lands where the operator was going, filter included.
  await page.getByLabel('Password').fill(CONSOLE_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/\?status=failed$/);
  await expect(page.getByRole('heading', { name: 'Executions' })).toBeVisible();
  await expect(page.locator('input[name="status"][value="failed"]')).toBeChecked();

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=/);
});
