// Entry point HubSpot loads (see stagelink-card-hsmeta.json): registers the card.
import React from 'react';
import { hubspot } from '@hubspot/ui-extensions';
import { DealContentCard } from './DealContentCard.jsx';
import { CONNECTION, STAGELINK_URL } from './settings.js';

hubspot.extend(({ context, actions }) => (
  <DealContentCard
    context={context}
    actions={actions}
    fetcher={hubspot.fetch}
    baseUrl={STAGELINK_URL}
    connection={CONNECTION}
  />
));
