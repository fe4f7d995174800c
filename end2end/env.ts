// What the test server is started with, shared by the config, the server script and the tests.
export const PORT = Number(process.env.E2E_PORT ?? 3917);
export const BASE_URL = `http://127.0.0.1:${PORT}`;
/// A second server, on its own database, whose Stripe API cannot be reached (nothing listens
/// there): every attempt fails as when Stripe is down, with a retryable error, and waits a minute
/// for its next try. The only way a real execution is retrying without faking Deferral itself.
export const STRIPE_DOWN_PORT = PORT + 1;
export const STRIPE_DOWN_URL = `http://127.0.0.1:${STRIPE_DOWN_PORT}`;
export const WEBHOOK_SECRET = 'whsec_e2e_0123456789abcdef';
export const CONSOLE_PASSWORD = 'e2e-console-password';
export const VIEWER_PASSWORD = 'e2e-viewer-password';
export const API_TOKEN = 'e2e-api-token-0123456789';
