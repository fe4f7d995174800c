import { expect, test, type APIRequestContext } from '@playwright/test';
import { API_TOKEN, BASE_URL } from '../env';
import { deliver, execution, hydrated, logIn, settle, SUCCEEDS, tag } from './support';

/** Pauses or resumes through the REST API (other tests share the server: always resume). */
async function viaApi(request: APIRequestContext, pattern: string, verb: 'pause' | 'resume'): Promise<void> {
  await request.post(`${BASE_URL}/api/v1/event-types/${pattern}/${verb}`, {
    headers: { Authorization: `Bearer ${API_TOKEN}` },
  });
}

test('a paused type is shown on the list and resumed in one click', async ({ page, request, javaScriptEnabled }) => {
  const type = SUCCEEDS(tag());
  try {
    await viaApi(request, type, 'pause');
    // Stored, and held while paused.
    const id = await deliver(request, { type });
    await logIn(page, `/?type=${type}`);
    if (javaScriptEnabled) await hydrated(page);
    const banner = page.locator(`li.paused-type[data-pattern="${type}"]`);
    await expect(banner).toContainText(`${type} is paused`);
    expect((await execution(request, id)).state).toBe('scheduled');

    await banner.getByRole('button', { name: `Resume ${type}` }).click();
    await expect(page.locator('p.notice')).toContainText(`Resumed ${type}`);
    await expect(page.locator(`li.paused-type[data-pattern="${type}"]`)).toHaveCount(0);
    await settle(request, [id], ['succeeded']);
  } finally {
    await viaApi(request, type, 'resume');
  }
});
