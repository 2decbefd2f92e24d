// The card's data logic, kept free of React so it can be tested alone.
//
// stagelink answers GET /api/v1/hubspot/card/{connection}?dealId=... (HubSpot adds
// userId, userEmail, portalId and appId, and signs the request). Answers:
//   200 {connection, deal: {id, name, stage, canonical_stage, account, amount, owner, closed},
//        items: [{content_id, title, type, why, open_url, mobile}], page_url, generated_at}
//   404 {code: "not_synced", message}   the deal has not reached stagelink yet
//   4xx/5xx {code, message}             anything else

/** hubspot.fetch allows at most 15 s; the card gives up sooner and offers a retry. */
export const FETCH_TIMEOUT_MS = 8000;

/** The size HubSpot's own examples use for the iframe modal. */
export const MODAL_SIZE = { width: 890, height: 748 };

/** The card endpoint for one deal (no trailing slash on baseUrl needed). */
export function cardUrl(baseUrl, connection, dealId) {
  const base = String(baseUrl).replace(/\/+$/, '');
  const query = new URLSearchParams({ dealId: String(dealId) });
  return `${base}/api/v1/hubspot/card/${encodeURIComponent(connection)}?${query}`;
}

const REFUSED = {
  401: 'stagelink could not verify this request. An admin should check the app\'s client secret in stagelink (app_client_secret) and stagelink\'s public URL.',
  403: 'This HubSpot account is not the one stagelink is connected to.',
};

/**
 * Fetch the card's data with `fetcher` (hubspot.fetch in HubSpot) and describe the outcome:
 *   {status: 'ready', data} | {status: 'not_synced', message} | {status: 'error', title, message}
 * Never throws: network failures and odd answers become an 'error' state.
 */
export async function loadCard(fetcher, { baseUrl, connection, dealId }) {
  if (dealId === undefined || dealId === null || dealId === '') {
    return { status: 'error', title: 'No deal', message: 'Open this card on a deal record.' };
  }
  let response;
  try {
    response = await fetcher(cardUrl(baseUrl, connection, dealId), {
      method: 'GET',
      timeout: FETCH_TIMEOUT_MS,
    });
  } catch (error) {
    return {
      status: 'error',
      title: 'stagelink is unreachable',
      message: `The request failed (${describe(error)}). Try again in a moment.`,
    };
  }
  const body = await readJson(response);
  if (response.ok) {
    if (!isCardData(body)) {
      return { status: 'error', title: 'Unexpected answer', message: 'stagelink sent data this card does not understand.' };
    }
    return { status: 'ready', data: body };
  }
  if (response.status === 404 && body && body.code === 'not_synced') {
    return { status: 'not_synced', message: body.message || 'This deal is not synced to stagelink yet.' };
  }
  const message = REFUSED[response.status]
    || (body && typeof body.message === 'string' && body.message)
    || `stagelink answered ${response.status}.`;
  return { status: 'error', title: `stagelink answered ${response.status}`, message };
}

/** What one recommendation shows: title as a tracked link, type, why, mobile-ready. */
export function itemProps(item) {
  return {
    key: item.content_id,
    title: item.title,
    href: { url: item.open_url, external: true },
    type: item.type,
    why: item.why,
    mobile: Boolean(item.mobile),
  };
}

/** The deal line under the title: "Contract sent · €120,000 · Zürich Versicherungen AG". */
export function dealSummary(deal) {
  return [deal.stage, deal.amount, deal.account].filter(Boolean).join(' · ');
}

/** The argument of actions.openIframeModal for the rep's full mobile page. */
export function fullPageModal(data) {
  return { uri: data.page_url, title: data.deal.name || 'stagelink', ...MODAL_SIZE };
}

function isCardData(body) {
  return Boolean(body) && typeof body === 'object' && Array.isArray(body.items)
    && typeof body.page_url === 'string' && Boolean(body.deal);
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function describe(error) {
  if (error && typeof error.message === 'string' && error.message) return error.message;
  return String(error);
}
