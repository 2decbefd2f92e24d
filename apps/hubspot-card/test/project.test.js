// The HubSpot project files agree with each other and with settings.js: HubSpot rejects a
// hubspot.fetch to a URL missing from permittedUrls, and an upload whose entrypoint is wrong.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { CONNECTION, STAGELINK_URL } from '../src/app/cards/settings.js';

const root = new URL('../', import.meta.url);
const json = (path) => JSON.parse(readFileSync(new URL(path, root), 'utf8'));

describe('project configuration', () => {
  const project = json('hsproject.json');
  const app = json('src/app/app-hsmeta.json');
  const cardMeta = json('src/app/cards/stagelink-card-hsmeta.json');

  test('is a developer platform 2025.2 project with one app and one deal card', () => {
    expect(project).toMatchObject({ srcDir: 'src', platformVersion: '2025.2' });
    expect(app.type).toBe('app');
    expect(cardMeta.type).toBe('card');
    expect(cardMeta.config.objectTypes).toEqual(['deals']);
    expect(['crm.record.tab', 'crm.record.sidebar']).toContain(cardMeta.config.location);
    const entrypoint = new URL(`${project.srcDir}${cardMeta.config.entrypoint}`, root);
    expect(existsSync(entrypoint)).toBe(true);
  });

  test('stagelink\'s URL is permitted for fetch and for the full-page iframe', () => {
    const origin = new URL(STAGELINK_URL).origin;
    const { fetch, iframe } = app.config.permittedUrls;
    expect(fetch.map((url) => new URL(url).origin)).toContain(origin);
    expect(iframe.map((url) => new URL(url).origin)).toContain(origin);
    // HubSpot only fetches HTTPS URLs that are not localhost.
    for (const url of [...fetch, ...iframe]) {
      expect(new URL(url).protocol).toBe('https:');
      expect(new URL(url).hostname).not.toBe('localhost');
    }
    // stagelink's connection names: lower-case letters, digits, '_' and '-'.
    expect(CONNECTION).toMatch(/^[a-z0-9][a-z0-9_-]{0,62}$/);
  });

  test('the entrypoint registers the card without throwing outside HubSpot', async () => {
    await expect(import('../src/app/cards/StagelinkCard.jsx')).resolves.toBeDefined();
  });
});
