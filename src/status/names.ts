/** The names and routes of the status functions (one place for the app, the tests and the docs). */
export const STATUS_FUNCTIONS = {
  /** `GET`: the go/no-go evidence as JSON. */
  statusGet: { name: 'statusGet', route: 'status' },
  /** `GET`: the same evidence as an HTML page. */
  statusPage: { name: 'statusPage', route: 'status/page' },
} as const;
