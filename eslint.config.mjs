import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.local/**', 'models/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code is bundled into Temporal's deterministic sandbox: no Node built-ins, no I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['fs', 'fs/*', 'node:*', 'path', 'crypto', 'os', 'child_process'], message: 'Workflow code must stay deterministic: no Node built-ins.' },
            {
              group: ['@aws-sdk/*', 'onnxruntime-node', '../activities/*', '../lib/storage', '../lib/storage/*', '../lib/model', '../lib/model/*', '../lib/model-build', '../lib/model-build/*', '../lib/episode/steps'],
              message: 'Import activities and I/O modules as types only in workflows.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
