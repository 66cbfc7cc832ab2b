// Type-aware lint: the rules that catch swallowed promises and unsafe `any` are the ones
// that matter for code that mutates production resources.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.sandbox/**', 'schema/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    // A caught value need not be an Error, and a status read off an untyped error is a guess:
    // production code asks errorMessage()/errorCode() and the client layer's typed errors.
    files: ['src/**/*.ts'],
    rules: {
      // Outbound HTTP goes through the SDK's HTTP client (src/azure/https-exchange.ts, the SDK
      // clients): one place for CA trust, deadlines and body limits.
      'no-restricted-imports': [
        'error',
        ...['node:https', 'https', 'node:http', 'http'].map((name) => ({
          name,
          importNames: ['request', 'get', 'default'],
          message: 'Send HTTP with httpsExchange() (src/azure/https-exchange.ts) or an SDK client, not a hand-written request.',
        })),
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "TSAsExpression > TSTypeReference.typeAnnotation[typeName.name=/^(Error|RestError)$/]",
          message: 'A caught value need not be an Error: use errorMessage()/errorCode() from src/errors.ts, or instanceof.',
        },
        {
          selector: "TSAsExpression > TSTypeReference.typeAnnotation > TSQualifiedName.typeName[left.name='NodeJS'][right.name='ErrnoException']",
          message: 'Use errorCode() from src/errors.ts instead of casting to NodeJS.ErrnoException.',
        },
        {
          selector: "TSAsExpression > TSTypeLiteral.typeAnnotation > TSPropertySignature[key.name='statusCode']",
          message: 'Duck-typed error shape: test instanceof AzureOperationError (src/azure/errors.ts) for a status.',
        },
        {
          selector: "BinaryExpression[operator='in'][left.value='statusCode']",
          message: "Duck-typed status check: map the error with toAzureError() and test instanceof ResourceNotFoundError (or the right typed error).",
        },
        {
          selector: "BinaryExpression[operator=/^[!=]==?$/][right.raw=/^[1-5]\\d\\d$/] > MemberExpression.left[property.name='statusCode']",
          message: "Status read off an error: map it with toAzureError() and test instanceof ResourceNotFoundError, ResourceConflictError, ...",
        },
      ],
    },
  },
  {
    files: ['test/**', 'bench/**', 'sandbox/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);
