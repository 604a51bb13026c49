/** Whether a subject filter (with `*` and `>` wildcards) matches a concrete subject. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

/** The subjects a worker uses, built once from its settings. */
export interface Subjects {
  input: string;
  result(jobId: string): string;
  /** Every result subject: a wildcard, or the one subject with flat results. */
  results: string;
  progress(jobId: string): string;
  cancelFilter: string;
  /** The job id of a cancel subject, or undefined when it is not one. */
  cancelledJob(subject: string): string | undefined;
  deadLetter: string;
  status(workerId: string): string;
}

export function subjectsOf(o: {
  inputSubject: string;
  outputSubject: string;
  flatResults: boolean;
  deadLetterSubject: string;
  progressSubject: string;
  cancelSubject: string;
  statusSubjectPrefix: string;
}): Subjects {
  const cancelPrefix = `${o.cancelSubject}.`;
  return {
    input: o.inputSubject,
    result: (id) => (o.flatResults ? o.outputSubject : `${o.outputSubject}.${id}`),
    results: o.flatResults ? o.outputSubject : `${o.outputSubject}.>`,
    progress: (id) => `${o.progressSubject}.${id}`,
    cancelFilter: `${o.cancelSubject}.*`,
    cancelledJob: (subject) =>
      subject.startsWith(cancelPrefix) ? subject.slice(cancelPrefix.length) : undefined,
    deadLetter: o.deadLetterSubject,
    status: (workerId) => `${o.statusSubjectPrefix}.${workerId}.status`,
  };
}
