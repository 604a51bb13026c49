// `@jw/cli/version`: a binary's entry asks this first, so that `--version` alone answers
// before commander, the option tables or anything else is loaded (issue 14: its CPU near
// a bare node's). Any other command line goes to the parser, which knows `-V` too.

/** Prints `version` and returns true when the command line is exactly `-V` or `--version`. */
export function versionOnly(version: string, argv: readonly string[] = process.argv.slice(2)) {
  if (argv.length !== 1 || (argv[0] !== '--version' && argv[0] !== '-V')) return false;
  process.stdout.write(`${version}\n`);
  return true;
}
