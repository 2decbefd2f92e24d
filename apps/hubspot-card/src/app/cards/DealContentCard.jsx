// The card itself: recommendations for the deal on screen, fetched from stagelink.
// `fetcher` is hubspot.fetch in HubSpot and a fake in tests; `actions` is the extension's.
import React, { useCallback, useEffect, useState } from 'react';
import {
  Button,
  Divider,
  EmptyState,
  ErrorState,
  Flex,
  Link,
  LoadingSpinner,
  Tag,
  Text,
} from '@hubspot/ui-extensions';
import { dealSummary, fullPageModal, itemProps, loadCard } from './cardData.js';

export function DealContentCard({ context, actions, fetcher, baseUrl, connection }) {
  const dealId = context && context.crm ? context.crm.objectId : undefined;
  const [state, setState] = useState({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setState({ status: 'loading' });
    loadCard(fetcher, { baseUrl, connection, dealId }).then((next) => {
      if (current) setState(next);
    });
    return () => {
      current = false;
    };
  }, [fetcher, baseUrl, connection, dealId, attempt]);

  const retry = useCallback(() => setAttempt((n) => n + 1), []);

  if (state.status === 'loading') {
    return <LoadingSpinner label="Loading recommended content" layout="centered" />;
  }
  if (state.status === 'not_synced') {
    return (
      <EmptyState title="Not synced yet" imageName="deals" layout="vertical">
        <Text>{state.message} New and changed deals reach stagelink within a few minutes.</Text>
        <Button onClick={retry}>Check again</Button>
      </EmptyState>
    );
  }
  if (state.status === 'error') {
    return (
      <ErrorState title={state.title}>
        <Text>{state.message}</Text>
        <Button onClick={retry}>Try again</Button>
      </ErrorState>
    );
  }
  const { data } = state;
  const items = data.items.map(itemProps);
  return (
    <Flex direction="column" gap="sm">
      <Text variant="microcopy">{dealSummary(data.deal)}</Text>
      {items.length === 0 ? (
        <Text>No content is mapped to this stage yet.</Text>
      ) : (
        items.map((item) => (
          <Flex key={item.key} direction="column" gap="flush" testId={`item-${item.key}`}>
            <Flex direction="row" gap="xs" align="center" wrap="wrap">
              <Link href={item.href}>{item.title}</Link>
              <Tag variant="default">{item.type}</Tag>
              {item.mobile ? <Tag variant="success">Mobile-ready</Tag> : null}
            </Flex>
            <Text variant="microcopy">{item.why}</Text>
          </Flex>
        ))
      )}
      <Divider />
      <Flex direction="row" gap="sm">
        <Button variant="primary" onClick={() => actions.openIframeModal(fullPageModal(data))}>
          Open full page
        </Button>
        <Button variant="secondary" onClick={retry}>Refresh</Button>
      </Flex>
    </Flex>
  );
}
