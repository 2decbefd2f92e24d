// The card rendered with HubSpot's own test renderer (@hubspot/ui-extensions/testing), which
// mocks the extension's context and actions; hubspot.fetch is replaced by fakeFetch.
import React from 'react';
import { describe, expect, test } from 'vitest';
import {
  Button,
  EmptyState,
  ErrorState,
  Flex,
  Link,
  LoadingSpinner,
  Tag,
  Text,
} from '@hubspot/ui-extensions';
import { createRenderer } from '@hubspot/ui-extensions/testing';
import card from './fixtures/card.json' with { type: 'json' };
import { DealContentCard } from '../src/app/cards/DealContentCard.jsx';
import { fakeFetch } from './fakeFetch.js';

const BASE = 'https://stagelink.example.com';

function renderCard(fetcher, dealId = 301) {
  const renderer = createRenderer('crm.record.tab');
  const context = { ...renderer.mocks.context, crm: { objectId: dealId, objectTypeId: '0-3' } };
  renderer.render(
    <DealContentCard
      context={context}
      actions={renderer.mocks.actions}
      fetcher={fetcher}
      baseUrl={BASE}
      connection="hubspot"
    />,
  );
  return renderer;
}

describe('DealContentCard', () => {
  test('shows a spinner, then the deal and its recommendations as tracked links', async () => {
    const fetcher = fakeFetch({ body: card });
    const { find, findAll, maybeFind, waitFor, findByTestId } = renderCard(fetcher);
    expect(find(LoadingSpinner).props.label).toBe('Loading recommended content');
    await waitFor(() => expect(findAll(Link)).toHaveLength(2));
    expect(maybeFind(LoadingSpinner)).toBeNull();
    expect(fetcher.calls.map((call) => call.url)).toEqual([
      `${BASE}/api/v1/hubspot/card/hubspot?dealId=301`,
    ]);
    expect(findAll(Text)[0].text).toBe('Contract sent · €120,000 · Zürich Versicherungen AG');
    const links = findAll(Link);
    expect(links.map((link) => link.text)).toEqual([
      'Negotiation playbook',
      'Pricing questions, answered',
    ]);
    expect(links[0].props.href).toEqual({ url: card.items[0].open_url, external: true });
    // Each item: its type, "Mobile-ready" only when it is, and why it fits.
    const first = findByTestId(Flex, 'item-negotiation-playbook');
    expect(first.findAll(Tag).map((tag) => tag.text)).toEqual(['playbook', 'Mobile-ready']);
    expect(first.find(Text).text).toBe(card.items[0].why);
    const second = findByTestId(Flex, 'item-pricing-faq');
    expect(second.findAll(Tag).map((tag) => tag.text)).toEqual(['faq']);
  });

  test('"Open full page" opens the signed page in HubSpot\'s iframe modal', async () => {
    const renderer = renderCard(fakeFetch({ body: card }));
    await renderer.waitFor(() => expect(renderer.findAll(Link)).toHaveLength(2));
    const open = renderer.find(Button, { variant: 'primary' });
    expect(open.text).toBe('Open full page');
    open.trigger('onClick');
    const modal = renderer.mocks.actions.openIframeModal;
    expect(modal.callCount).toBe(1);
    expect(modal.calls[0][0]).toEqual({
      uri: card.page_url,
      title: 'Zürich renewal 2027',
      width: 890,
      height: 748,
    });
  });

  test('a deal stagelink has not synced yet says so, and "Check again" fetches again', async () => {
    const fetcher = fakeFetch(
      { status: 404, body: { code: 'not_synced', message: 'This deal is not synced to stagelink yet.' } },
      { body: card },
    );
    const renderer = renderCard(fetcher);
    await renderer.waitFor(() => expect(renderer.find(EmptyState).props.title).toBe('Not synced yet'));
    expect(renderer.find(EmptyState).find(Text).text).toContain(
      'This deal is not synced to stagelink yet.',
    );
    renderer.find(Button).trigger('onClick');
    await renderer.waitFor(() => expect(renderer.findAll(Link)).toHaveLength(2));
    expect(fetcher.calls).toHaveLength(2);
  });

  test('a refused request shows an error an admin can act on', async () => {
    const renderer = renderCard(
      fakeFetch({ status: 401, body: { code: 'invalid_signature', message: 'invalid or missing HubSpot signature' } }),
    );
    await renderer.waitFor(() => expect(renderer.maybeFind(ErrorState)).not.toBeNull());
    const error = renderer.find(ErrorState);
    expect(error.props.title).toBe('stagelink answered 401');
    expect(error.find(Text).text).toContain('client secret');
    expect(renderer.maybeFind(Link)).toBeNull();
  });
});
