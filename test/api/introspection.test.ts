import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

let service: Service;

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir(), graphqlIntrospection: false });
});

afterAll(async () => {
  await service?.stop();
});

describe('with --graphql-introspection false', () => {
  it('refuses introspection and field suggestions, and still answers queries', async () => {
    const schema = await gql(service.graphqlUrl, '{ __schema { types { name } } }');
    expect(schema.errors?.[0]?.message).toMatch(/introspection/i);
    const typo = await gql(service.graphqlUrl, '{ tenantz { totalCount } }');
    expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
    const ok = await gql<{ tenants: { totalCount: number } }>(service.graphqlUrl, '{ tenants { totalCount } }');
    expect(ok.data?.tenants.totalCount).toBe(0);
  });
});
