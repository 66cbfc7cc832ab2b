/**
 * Token buckets as ARM, ACR and Key Vault apply them. Buckets refill continuously in real time (not the
 * sandbox clock, which tests may shift by days).
 */

/** A token bucket with a refill rate and a burst capacity. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
  ) {
    this.tokens = burst;
    this.updatedAt = performance.now();
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
  }

  /**
   * Takes one token. Returns whether it was available, the whole tokens left, and when it was
   * not, the seconds until one will be (at least 1, as ARM never says 0).
   */
  take(): { allowed: boolean; remaining: number; retryAfterSeconds: number } {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, remaining: Math.floor(this.tokens), retryAfterSeconds: 0 };
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerSecond));
    return { allowed: false, remaining: 0, retryAfterSeconds };
  }
}

/** Bucket parameters; the defaults are ARM's documented per-principal limits. */
export interface ThrottlingSettings {
  readonly armReadsPerSecond: number;
  readonly armReadBurst: number;
  readonly armWritesPerSecond: number;
  readonly armWriteBurst: number;
  readonly acrPerSecond: number;
  readonly acrBurst: number;
  /** Key Vault data plane, per vault. */
  readonly keyVaultPerSecond: number;
  readonly keyVaultBurst: number;
}

/**
 * ARM: 25 reads/s with a burst of 250, 10 writes/s with a burst of 200. ACR: 10/s, burst 200.
 * Key Vault: 4,000 secret transactions per 10 s per vault (its documented service limit), as
 * 400/s with a burst of 4,000.
 */
export const DEFAULT_THROTTLING: ThrottlingSettings = {
  armReadsPerSecond: 25,
  armReadBurst: 250,
  armWritesPerSecond: 10,
  armWriteBurst: 200,
  acrPerSecond: 10,
  acrBurst: 200,
  keyVaultPerSecond: 400,
  keyVaultBurst: 4000,
};

/** All buckets of one sandbox, keyed by subscription and principal (ARM), registry (ACR) or vault (Key Vault). */
export class Throttler {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(readonly settings: ThrottlingSettings) {}

  private bucket(key: string, rate: number, burst: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(rate, burst);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  /** Draws on the ARM read or write bucket of a subscription and principal. */
  arm(kind: 'read' | 'write', subscriptionId: string, principal: string): ReturnType<TokenBucket['take']> {
    const { settings } = this;
    return kind === 'read'
      ? this.bucket(`arm:read:${subscriptionId.toLowerCase()}:${principal}`, settings.armReadsPerSecond, settings.armReadBurst).take()
      : this.bucket(`arm:write:${subscriptionId.toLowerCase()}:${principal}`, settings.armWritesPerSecond, settings.armWriteBurst).take();
  }

  /** Draws on a registry's data-plane bucket. */
  acr(registry: string): ReturnType<TokenBucket['take']> {
    return this.bucket(`acr:${registry.toLowerCase()}`, this.settings.acrPerSecond, this.settings.acrBurst).take();
  }

  /** Draws on a vault's data-plane bucket. */
  keyVault(vault: string): ReturnType<TokenBucket['take']> {
    return this.bucket(`keyvault:${vault.toLowerCase()}`, this.settings.keyVaultPerSecond, this.settings.keyVaultBurst).take();
  }
}
