import { expect, test, type APIRequestContext } from '@playwright/test';
import { API_TOKEN, BASE_URL } from '../env';
import { deliver, execution, hydrated, logIn, settle, SUCCEEDS, tag } from './support';

/** Resumes through the REST API whatever the test left paused (other tests share the server). */
async function resumeViaApi(request: APIRequestContext, pattern: string): Promise<void> {
  await request.post(`${BASE_URL}/api/v1/event-types/${pattern}/resume`, {
    headers: { Authorization: `Bearer ${API_TOKEN}` },
  });
}

test('a list filtered to one type pauses and resumes it in one click', async ({ page, request, javaScriptEnabled }) => {
  const type = SUCCEEDS(tag());
  const list = `/?type=${type}`;
  try {
    await logIn(page, list);
    if (javaScriptEnabled) await hydrated(page);
    await expect(page.locator('p.type-pause')).toContainText(`${type} runs.`);
    await page.getByRole('button', { name: `Pause ${type}` }).click();
    await expect(page.locator('p.notice')).toHaveText(
      `Paused ${type}: its executions are held (not run) until it is resumed.`,
    );
    // Back on the same filtered list, which now offers to resume.
    expect(new URL(page.url()).searchParams.get('type')).toBe(type);
    await expect(page.locator('p.type-pause')).toContainText('is paused');
    await expect(page.locator('li.paused-type')).toContainText(`${type} is paused`);

    // Stored, and held while paused.
    const id = await deliver(request, { type });
    await page.waitForTimeout(1_000);
    expect((await execution(request, id)).state).toBe('scheduled');

    await page.getByRole('button', { name: `Resume ${type}` }).first().click();
    await expect(page.locator('p.notice')).toContainText(`Resumed ${type}`);
    await expect(page.getByRole('button', { name: `Pause ${type}` })).toBeVisible();
    await settle(request, [id], ['succeeded']);
  } finally {
    await resumeViaApi(request, type);
  }
});
