/**
 * The audit trail each host keeps of its activations: when, which stack (the
 * owner record's `project/stack/resource`), which release (and the one
 * before), which files changed or went, whether the service restarted, and
 * the outcome. One JSON line per activation in the service's state directory
 * (`audit.log`, root-only, the newest lines kept), and the same line in the
 * journal under its own identifier, `amarktai-infra-audit`
 * (`journalctl -t amarktai-infra-audit`). Never a file's content.
 */
import { auditLogPath } from "../model";
import { quoteScript, shellQuote as q } from "./shell";

/** The journal identifier of audit lines. */
export const AUDIT_IDENTIFIER = "amarktai-infra-audit";
/** How many lines `audit.log` keeps (the oldest go first). */
export const AUDIT_KEEP_LINES = 500;

/** One activation's record. argv: time, outcome, owner, unit, release, previous release, restarted (yes/no), then `+path` (changed) or `-path` (removed). */
const AUDIT_LINE_PY = [
    "import json, sys",
    "time, outcome, owner, unit, release, previous, restarted = sys.argv[1:8]",
    "files = sys.argv[8:]",
    "print(json.dumps({'time': time, 'outcome': outcome, 'owner': owner, 'unit': unit, 'release': release or None, 'previousRelease': previous or None,",
    "                  'restarted': restarted == 'yes', 'changed': [f[1:] for f in files if f[0] == '+'], 'removed': [f[1:] for f in files if f[0] == '-']}, sort_keys=True))",
].join("\n");

/**
 * Shell lines defining `audit OUTCOME` for the activation (after its
 * `changed`/`removing` index arrays, `PATHS`, `REMOVED_PATHS`, `UNIT`,
 * `RELEASE_ID`/`old_release` and `need_restart` exist): appends the record
 * and logs it to the journal. Recording never fails the activation.
 */
export function auditLines(serviceName: string, owner: string): string[] {
    const log = auditLogPath(serviceName);
    return [
        `AUDIT_LOG=${q(log)}`,
        `AUDIT_OWNER=${q(owner)}`,
        "audit() {",
        '  local files=() i line',
        '  for i in "${changed[@]}"; do files+=("+${PATHS[$i]}"); done',
        '  for i in "${removing[@]}"; do files+=("-${REMOVED_PATHS[$i]}"); done',
        `  line=$(python3 -c ${quoteScript(AUDIT_LINE_PY)} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$AUDIT_OWNER" "$UNIT" "\${RELEASE_ID:-}" "\${old_release:-}" "\${need_restart:+yes}" "\${files[@]}") || return 0`,
        '  install -d -m 0700 -o root -g root "${AUDIT_LOG%/*}" || return 0',
        "  printf '%s\\n' \"$line\" >> \"$AUDIT_LOG\" || return 0",
        `  if [ "$(wc -l < "$AUDIT_LOG")" -gt ${AUDIT_KEEP_LINES * 2} ]; then tail -n ${AUDIT_KEEP_LINES} "$AUDIT_LOG" > "$AUDIT_LOG.tmp" && mv -f "$AUDIT_LOG.tmp" "$AUDIT_LOG"; fi`,
        `  logger -t ${AUDIT_IDENTIFIER} -- "$line" 2>/dev/null || true`,
        "}",
    ];
}
