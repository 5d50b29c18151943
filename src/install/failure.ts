/** A failure part-way (exit 1) whose message already says truthfully what changed and what did not. */
export class InstallFailure extends Error {}
