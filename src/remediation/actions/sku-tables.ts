/**
 * What the actions know about SKUs, from Azure's documentation: the App Service plan tier a SKU
 * name belongs to and the most workers the tier allows (App Service limits), which tiers the
 * platform scales itself (Consumption, Elastic Premium, Flex Consumption: a worker count cannot
 * be set and they cannot change into a dedicated plan), and the PostgreSQL flexible server tier
 * of a compute size.
 */

interface PlanFamily {
  readonly pattern: RegExp;
  readonly tier: string;
  readonly maxWorkers: number;
}

const PLAN_FAMILIES: readonly PlanFamily[] = [
  { pattern: /^F1$/i, tier: 'Free', maxWorkers: 1 },
  { pattern: /^D1$/i, tier: 'Shared', maxWorkers: 1 },
  { pattern: /^B[1-3]$/i, tier: 'Basic', maxWorkers: 3 },
  { pattern: /^S[1-3]$/i, tier: 'Standard', maxWorkers: 10 },
  { pattern: /^P[1-3]$/i, tier: 'Premium', maxWorkers: 20 },
  { pattern: /^P[1-3]v2$/i, tier: 'PremiumV2', maxWorkers: 30 },
  { pattern: /^P[0-3]v3$/i, tier: 'PremiumV3', maxWorkers: 30 },
  { pattern: /^P[1-5]mv3$/i, tier: 'PremiumMV3', maxWorkers: 30 },
  { pattern: /^P[0-5]m?v4$/i, tier: 'PremiumV4', maxWorkers: 30 },
  { pattern: /^I[1-3]$/i, tier: 'Isolated', maxWorkers: 100 },
  { pattern: /^I[1-6]m?v2$/i, tier: 'IsolatedV2', maxWorkers: 100 },
  { pattern: /^Y1$/i, tier: 'Dynamic', maxWorkers: 1 },
  { pattern: /^EP[1-3]$/i, tier: 'ElasticPremium', maxWorkers: 20 },
  { pattern: /^FC1$/i, tier: 'FlexConsumption', maxWorkers: 1 },
];

const PLATFORM_SCALED = new Set(['dynamic', 'elasticpremium', 'flexconsumption']);

/** The tier and worker maximum of an App Service plan SKU name, or undefined for a name not known here. */
export function planFamily(skuName: string): { readonly tier: string; readonly maxWorkers: number } | undefined {
  return PLAN_FAMILIES.find((family) => family.pattern.test(skuName));
}

/** True for a tier the platform scales itself (no worker count, no change to a dedicated plan). */
export function isPlatformScaledTier(tier: string | undefined): boolean {
  return tier !== undefined && PLATFORM_SCALED.has(tier.toLowerCase());
}

/** The PostgreSQL flexible server tier of a compute size, or undefined for a name not known here. */
export function postgresTier(skuName: string): 'Burstable' | 'GeneralPurpose' | 'MemoryOptimized' | undefined {
  if (/^Standard_B\d+m?s$/i.test(skuName)) return 'Burstable';
  if (/^Standard_D\d+a?d?s_v[3-6]$/i.test(skuName)) return 'GeneralPurpose';
  if (/^Standard_E\d+a?d?s_v[3-6]$/i.test(skuName)) return 'MemoryOptimized';
  return undefined;
}

const PLAN_TIER_ORDER = ['free', 'shared', 'basic', 'standard', 'premium', 'premiumv2', 'premiumv3', 'premiummv3', 'premiumv4', 'isolated', 'isolatedv2'];

/** An App Service plan SKU's place among all (tier generation first, then size), or undefined when unknown. */
export function planSkuRank(skuName: string): number | undefined {
  const family = planFamily(skuName);
  if (family === undefined || isPlatformScaledTier(family.tier)) return undefined;
  const tier = PLAN_TIER_ORDER.indexOf(family.tier.toLowerCase());
  const size = Number(/(\d+)/.exec(skuName)?.[1] ?? '0');
  return tier < 0 ? undefined : tier * 100 + size;
}

/** A PostgreSQL compute size's place among all (tier, then vCores), or undefined when unknown. */
export function postgresSkuRank(skuName: string): number | undefined {
  const tier = postgresTier(skuName);
  if (tier === undefined) return undefined;
  const vcores = Number(/^Standard_[A-Z](\d+)/i.exec(skuName)?.[1] ?? '0');
  return ['Burstable', 'GeneralPurpose', 'MemoryOptimized'].indexOf(tier) * 1000 + vcores;
}

/**
 * The ladder's next step from `current`: the entry after it when it is on the ladder (the
 * operator's order wins), else the first entry ranked above it; undefined at the top, or when
 * `current` is off the ladder and cannot be ranked (fail closed).
 */
export function nextOnLadder(ladder: readonly string[], current: string, rank: (name: string) => number | undefined): string | undefined {
  const index = ladder.findIndex((name) => name.toLowerCase() === current.toLowerCase());
  if (index >= 0) return ladder[index + 1];
  const from = rank(current);
  if (from === undefined) return undefined;
  return ladder.find((name) => (rank(name) ?? Number.NEGATIVE_INFINITY) > from);
}
