// From a parsed-but-unchecked value (YAML turned into JS, a stored document, a document with a
// run-time change spliced in) to a PolicyDocument, or a PolicyError listing every problem found.
// Steps: the file schema checks shapes and values; each tier is laid over its base (`extends`, else
// the base tier of the same name) and must come out complete; each tenant's overrides are laid over
// its tier and the result checked again, so no tenant can end up with, say, a cooldown above its cap.

import { deepFreeze, mergePatch } from './plain-data.js';
import { describeZodIssues, type KeyedProblem } from './describe-issue.js';
import { formatKeyPath, PolicyError } from './policy-error.js';
import {
  policyFileSchema,
  tierPolicySchema,
  type PolicyFile,
  type TenantEntry,
  type TierPatch,
} from './policy-schema.js';
import type { PolicyDocument, TenantOverrides, TenantPolicy, TierPolicy } from './policy-types.js';

/** Where a key path sits in the source text. */
export type Locate = (path: readonly PropertyKey[]) => { line: number; column: number };

export interface BuildOptions {
  /** the file name, or a name for the source of a run-time change; issues carry it */
  source: string;
  /** positions for issues; without it issues have line and column 0 */
  locate?: Locate;
  /**
   * Tiers that exist before the document's own and that its tiers of the same name are laid over:
   * the built-ins for a file, the current tiers for a run-time change, none for a stored document.
   */
  baseTiers: Readonly<Record<string, TierPolicy>>;
}

// A section added to POLICY_SECTIONS but not to PolicyDocument (or the reverse) fails to compile here.
type SectionsMatch = [keyof PolicyFile] extends [keyof PolicyDocument]
  ? [keyof PolicyDocument] extends [keyof PolicyFile]
    ? true
    : false
  : false;
const sectionsMatchDocument: SectionsMatch = true;
void sectionsMatchDocument;

// Documents this module built: checking them again (PolicyStore.replace) can be skipped.
const builtDocuments = new WeakSet<PolicyDocument>();

/** Checks `raw` and resolves it into a frozen PolicyDocument; throws PolicyError. */
export function buildPolicy(raw: unknown, options: BuildOptions): PolicyDocument {
  const parsed = policyFileSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) throw policyError(describeZodIssues(parsed.error.issues, policyFileSchema), options);

  const { defaultTier, tiers: tierPatches, tenants: tenantEntries, ...plainSections } = parsed.data;
  const problems: KeyedProblem[] = [];
  const { tiers, failedTiers } = resolveTiers(tierPatches, options.baseTiers, problems);
  if (!Object.hasOwn(tiers, defaultTier) && !failedTiers.has(defaultTier)) {
    problems.push({ path: ['defaultTier'], message: unknownTierMessage(defaultTier, tiers) });
  }
  const tenants = resolveTenants(tenantEntries, defaultTier, tiers, failedTiers, problems);
  if (problems.length > 0) throw policyError(problems, options);

  const document: PolicyDocument = { defaultTier, ...plainSections, tiers, tenants };
  builtDocuments.add(document);
  return deepFreeze(document);
}

/** A document from storage or built by hand: checked as is, nothing laid over built-ins. */
export function validatePolicyDocument(value: unknown, source: string): PolicyDocument {
  if (typeof value === 'object' && value !== null && builtDocuments.has(value as PolicyDocument)) {
    return value as PolicyDocument;
  }
  return buildPolicy(value, { source, baseTiers: {} });
}

/** A tier with a tenant's overrides laid over it (a null threshold removes the tier's). */
export function applyOverrides(tier: TierPolicy, overrides: TenantOverrides): TierPolicy {
  return mergePatch(tier, overrides);
}

interface ResolvedTiers {
  tiers: Record<string, TierPolicy>;
  /** tiers with problems of their own (already reported); whoever names them stays quiet */
  failedTiers: Set<string>;
}

function resolveTiers(
  patches: Readonly<Record<string, TierPatch>>,
  baseTiers: Readonly<Record<string, TierPolicy>>,
  problems: KeyedProblem[],
): ResolvedTiers {
  const tiers: Record<string, TierPolicy> = { ...baseTiers };
  const failedTiers = new Set<string>();
  const resolving = new Set<string>();
  const done = new Set<string>();

  const fail = (name: string): undefined => {
    resolving.delete(name);
    failedTiers.add(name);
    delete tiers[name];
    return undefined;
  };

  // Returns the resolved tier, or undefined when it (or what it extends) has a problem.
  const resolve = (name: string, chain: readonly string[]): TierPolicy | undefined => {
    if (!Object.hasOwn(patches, name)) return Object.hasOwn(baseTiers, name) ? baseTiers[name] : undefined;
    if (done.has(name)) return tiers[name];
    if (failedTiers.has(name)) return undefined;
    resolving.add(name);

    const { extends: baseName, ...fields } = patches[name] as TierPatch;
    let base: TierPolicy | undefined;
    if (baseName !== undefined) {
      const here = ['tiers', name, 'extends'];
      if (resolving.has(baseName)) {
        problems.push({ path: here, message: `extends forms a cycle: ${[...chain, name, baseName].join(' → ')}` });
        return fail(name);
      }
      if (!Object.hasOwn(patches, baseName) && !Object.hasOwn(baseTiers, baseName)) {
        problems.push({ path: here, message: unknownTierMessage(baseName, { ...baseTiers, ...patches }) });
        return fail(name);
      }
      base = resolve(baseName, [...chain, name]);
      if (base === undefined) return fail(name);
    } else if (Object.hasOwn(baseTiers, name)) {
      base = baseTiers[name];
    }

    const checked = tierPolicySchema.safeParse(mergePatch(base ?? {}, fields), { reportInput: true });
    if (!checked.success) {
      for (const problem of describeZodIssues(checked.error.issues, tierPolicySchema)) {
        const message =
          base === undefined && problem.message === 'is required'
            ? 'is required: a tier that is not built in sets every field, or names one to start from with `extends`'
            : problem.message;
        problems.push({ path: ['tiers', name, ...problem.path], message });
      }
      return fail(name);
    }
    resolving.delete(name);
    done.add(name);
    tiers[name] = checked.data;
    return checked.data;
  };

  for (const name of Object.keys(patches)) resolve(name, []);
  return { tiers, failedTiers };
}

function resolveTenants(
  entries: Readonly<Record<string, TenantEntry>>,
  defaultTier: string,
  tiers: Readonly<Record<string, TierPolicy>>,
  failedTiers: ReadonlySet<string>,
  problems: KeyedProblem[],
): Record<string, TenantPolicy> {
  const tenants: Record<string, TenantPolicy> = {};
  for (const [tenantId, entry] of Object.entries(entries)) {
    const tierName = entry.tier ?? defaultTier;
    const overrides = entry.overrides ?? {};
    tenants[tenantId] = { tier: tierName, overrides };

    if (!Object.hasOwn(tiers, tierName)) {
      // a missing defaultTier is reported once, at defaultTier; a failed tier, at the tier
      if (entry.tier !== undefined && !failedTiers.has(tierName)) {
        problems.push({ path: ['tenants', tenantId, 'tier'], message: unknownTierMessage(tierName, tiers) });
      }
      continue;
    }
    if (Object.keys(overrides).length === 0) continue; // the tier itself, checked already
    const effective = tierPolicySchema.safeParse(applyOverrides(tiers[tierName] as TierPolicy, overrides), {
      reportInput: true,
    });
    if (!effective.success) {
      for (const problem of describeZodIssues(effective.error.issues, tierPolicySchema)) {
        problems.push({
          path: ['tenants', tenantId, 'overrides', ...problem.path],
          message: `${problem.message} (with the overrides laid over tier ${tierName})`,
        });
      }
    }
  }
  return tenants;
}

function unknownTierMessage(name: string, tiers: Readonly<Record<string, unknown>>): string {
  const names = Object.keys(tiers);
  const shown = names.length > 20 ? [...names.slice(0, 20), '…'] : names;
  return `unknown tier ${JSON.stringify(name)}; the tiers are: ${shown.join(', ')}`;
}

function policyError(problems: readonly KeyedProblem[], options: BuildOptions): PolicyError {
  const locate: Locate = options.locate ?? (() => ({ line: 0, column: 0 }));
  const issues = problems.map((problem) => ({
    file: options.source,
    ...locate(problem.path),
    path: formatKeyPath(problem.path),
    message: problem.message,
  }));
  // zod lists unknown keys after the other problems of their object; a reader wants file order
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  return new PolicyError(issues);
}
