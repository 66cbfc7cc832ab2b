/**
 * Names of the rotation functions, orchestrator, activities and the tags it writes on secret
 * versions, in one place for the triggers, the orchestrator, the CLI and the tests.
 */

/** The orchestrator. */
export const ROTATION_ORCHESTRATOR = 'rotationOrchestrator';

/** Activities: every step of a rotation. */
export const ROTATION_ACTIVITIES = {
  plan: 'rotationPlanActivity',
  lock: 'rotationLockActivity',
  store: 'rotationStoreActivity',
  reset: 'rotationResetActivity',
  verify: 'rotationVerifyActivity',
  mark: 'rotationMarkActivity',
  reinstate: 'rotationReinstateActivity',
  derived: 'rotationDerivedActivity',
  pickUp: 'rotationPickUpActivity',
  disable: 'rotationDisableActivity',
  due: 'rotationDueActivity',
  finish: 'rotationFinishActivity',
} as const;

/** HTTP functions and their routes (under `/api`), and the timer. */
export const ROTATION_FUNCTIONS = {
  rotationsStart: { name: 'rotationsStart', route: 'rotations' },
  rotationsGet: { name: 'rotationsGet', route: 'rotations/{id}' },
} as const;

/** The daily timer and its schedule setting. */
export const ROTATION_TIMER = { name: 'rotationTimer', setting: 'ROTATION_SCHEDULE', default: '0 0 5 * * *' } as const;

/** Tags on the versions a rotation writes: no values, only who wrote them and in which state. */
export const ROTATION_TAGS = {
  /** The rotation (orchestration instance) that wrote the version. */
  owner: 'ops-autopilot-rotation',
  /** `pending` (stored, not yet proven), `active` (proven), `failed` (never worked; disabled). */
  state: 'ops-autopilot-state',
  /** The version this one replaces. */
  previous: 'ops-autopilot-previous',
  /** On a derived secret's version: the version of the rotated secret it was built from. */
  source: 'ops-autopilot-source',
  /** On a version that puts an earlier value back as the latest: the version it copies. */
  reinstates: 'ops-autopilot-reinstates',
  /** Microsoft's dual-credential pattern: which storage key a version holds. */
  credentialId: 'CredentialId',
} as const;

/** The durable instance id of a rotation started by an event or the timer: one per secret version, so a duplicate starts nothing. */
export function rotationInstanceId(vault: string, secret: string, version: string): string {
  return `rotation-${vault}-${secret}-${version}`.toLowerCase().slice(0, 200);
}
