import type { ViteUserConfig } from 'vitest/config';

/** The shared vitest settings, with a package's own overrides merged over them. */
export declare function defineCcatConfig(overrides?: ViteUserConfig): ViteUserConfig;
