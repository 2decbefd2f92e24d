// Where this card finds stagelink. Edit both before `hs project upload`:
// STAGELINK_URL must also be listed in ../app-hsmeta.json (permittedUrls.fetch and .iframe),
// CONNECTION is the name of the HubSpot connection in stagelink's configuration.
export const STAGELINK_URL = 'https://stagelink.example.com';
export const CONNECTION = 'hubspot';
