/** The package version both commands report (`--version`, the serve-once bootstrap line). */
export const FCP_VERSION = '0.1.0';
