import config from '@ccat/eslint-config';

export default config;
