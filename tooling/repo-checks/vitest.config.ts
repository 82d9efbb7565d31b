import { defineCcatConfig } from '@ccat/vitest-config';

// `turbo run --dry=json` hashes every package's inputs; give it time on a loaded machine.
export default defineCcatConfig({ test: { testTimeout: 120_000 } });
