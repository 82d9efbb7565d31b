import { defineCcatConfig } from '@ccat/vitest-config';

export default defineCcatConfig();
