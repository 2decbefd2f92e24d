import { describe, expect, test } from 'vitest';
import card from './fixtures/card.json' with { type: 'json' };
import {
  FETCH_TIMEOUT_MS,
  cardUrl,
  dealSummary,
  fullPageModal,
  itemProps,
  loadCard,
} from '../src/app/cards/cardData.js';
import { fakeFetch } from './fakeFetch.js';

const where = { baseUrl: 'https://stagelink.example.com/', connection: 'acme hs', dealId: 301 };

describe('cardUrl', () => {
  test('names the connection and the deal, encoded', () => {
    expect(cardUrl('https://stagelink.example.com/', 'acme hs', 301)).toBe(
      'https://stagelink.example.com/api/v1/hubspot/card/acme%20hs?dealId=301',
    );
  });
});

describe('loadCard', () => {
  test('asks stagelink once for this deal with a timeout, and returns its data', async () => {
    const fetcher = fakeFetch({ body: card });
    const state = await loadCard(fetcher, where);
    expect(state).toEqual({ status: 'ready', data: card });
    expect(fetcher.calls).toEqual([
      {
        url: 'https://stagelink.example.com/api/v1/hubspot/card/acme%20hs?dealId=301',
        options: { method: 'GET', timeout: FETCH_TIMEOUT_MS },
      },
    ]);
    expect(FETCH_TIMEOUT_MS).toBeLessThanOrEqual(15000); // hubspot.fetch's own limit
  });

  test('a deal stagelink has not synced says so, with stagelink\'s message', async () => {
    const fetcher = fakeFetch({
      status: 404,
      body: { code: 'not_synced', message: 'This deal is not synced to stagelink yet.' },
    });
    expect(await loadCard(fetcher, where)).toEqual({
      status: 'not_synced',
      message: 'This deal is not synced to stagelink yet.',
    });
  });

  test('refusals and failures become errors a person can act on', async () => {
    const unsigned = await loadCard(
      fakeFetch({ status: 401, body: { code: 'invalid_signature', message: 'invalid' } }),
      where,
    );
    expect(unsigned.status).toBe('error');
    expect(unsigned.message).toContain('client secret');
    const portal = await loadCard(fakeFetch({ status: 403, body: { code: 'wrong_portal' } }), where);
    expect(portal.message).toContain('not the one stagelink is connected to');
    const unknown = await loadCard(
      fakeFetch({ status: 404, body: { code: 'unknown_connection', message: 'no HubSpot connection of that name' } }),
      where,
    );
    expect(unknown).toMatchObject({ status: 'error', message: 'no HubSpot connection of that name' });
    const down = await loadCard(fakeFetch({ status: 502, body: '<html>Bad gateway</html>' }), where);
    expect(down).toMatchObject({ status: 'error', title: 'stagelink answered 502' });
    const offline = await loadCard(fakeFetch(new TypeError('fetch failed')), where);
    expect(offline).toMatchObject({ status: 'error', title: 'stagelink is unreachable' });
    expect(offline.message).toContain('fetch failed');
    const odd = await loadCard(fakeFetch({ body: { items: 'none' } }), where);
    expect(odd).toMatchObject({ status: 'error', title: 'Unexpected answer' });
  });

  test('without a deal id nothing is fetched', async () => {
    const fetcher = fakeFetch({ body: card });
    const state = await loadCard(fetcher, { ...where, dealId: undefined });
    expect(state.status).toBe('error');
    expect(fetcher.calls).toEqual([]);
  });
});

describe('what is shown', () => {
  test('each item opens its tracked link in a new tab', () => {
    expect(itemProps(card.items[1])).toEqual({
      key: 'pricing-faq',
      title: 'Pricing questions, answered',
      href: { url: card.items[1].open_url, external: true },
      type: 'faq',
      why: 'Made for the negotiate stage (Contract sent).',
      mobile: false,
    });
  });

  test('the deal line skips what the deal lacks', () => {
    expect(dealSummary(card.deal)).toBe('Contract sent · €120,000 · Zürich Versicherungen AG');
    expect(dealSummary({ stage: 'Qualified to buy', amount: null, account: null })).toBe(
      'Qualified to buy',
    );
  });

  test('the full page opens the signed page link in HubSpot\'s iframe modal', () => {
    expect(fullPageModal(card)).toEqual({
      uri: card.page_url,
      title: 'Zürich renewal 2027',
      width: 890,
      height: 748,
    });
  });
});
