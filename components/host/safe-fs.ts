/**
 * The safe file-operation helper every root step uses inside a directory a
 * less privileged user can write (activation swap, backup, rollback, the
 * host preparation's directories, removal, reading an existing .env): a
 * small Python program (python3 is on every target) run with `python3 -c`.
 * It walks each path from `/` one component at a time with
 * `O_DIRECTORY|O_NOFOLLOW` through directory fds (the idea of systemd's
 * chase() with CHASE_SAFE), refuses links and directories not owned by root
 * or the trusted service account, writes through fresh `O_EXCL|O_NOFOLLOW`
 * temporary files with unpredictable names, sets owner and mode on the fd,
 * fsyncs, and renames with both directory fds. Content comes from root-only
 * files, never from the command line. Its docstring lists the operations.
 */
import { ENV_FILE_PARSER_PY } from "./env-parse";
import { quoteScript } from "./shell";

/** The helper's Python source. */
export const SAFE_FS_PY = String.raw`"""amarktai-infra safe-fs: root file operations in directories a less
privileged user can write, without following anything that user can plant.

Every path is walked from / one component at a time with
open(O_DIRECTORY|O_NOFOLLOW) relative to the previous directory fd (the
idea of systemd chase() with CHASE_SAFE): a symlink, a non-directory, or a
directory not owned by root or a trusted account (or writable by an
untrusted group or by everyone) is refused. Files are written to a temporary
name created with O_CREAT|O_EXCL|O_NOFOLLOW and an unpredictable suffix
inside the directory fd, owned and moded through the fd, fsynced, and
renamed over the target with both directory fds, so nothing ever writes
through an existing name. Content comes from files in root-only places,
never from the command line.

Usage: safe-fs [--trust USER:GROUP]... OP ARGS...
Exit status: 0 done, 10 "differs" (for same), 2 refused (message on stderr).
"""
import contextlib
import errno
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import stat
import sys

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TRUSTED_UIDS = {0}
TRUSTED_GIDS = {0}


class Refused(Exception):
    pass


class Missing(Refused):
    """A directory on the way does not exist (refused where a directory is needed, absence elsewhere)."""


def ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        raise Refused(f"unknown user or group {owner}:{group}")


def split(path):
    if not path.startswith("/"):
        raise Refused(f"{path} is not an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise Refused(f"{path} has . or .. components")
    return parts


def names(st):
    """The owner and group of st by name (the number where there is none), and "owner:group mode"."""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return owner, group, f"{owner}:{group} {stat.S_IMODE(st.st_mode):04o}"


def check_dir(st, path):
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{path} is not a directory")
    owner, group, desc = names(st)
    advice = "refusing to work inside it: choose a directory whose parents only root can write"
    if st.st_uid not in TRUSTED_UIDS:
        raise Refused(f"{path} is owned by uid {st.st_uid} ({desc}), not by root or the service user, and its owner could replace what is created inside it; {advice}")
    if st.st_mode & 0o002:
        raise Refused(f"{path} is writable by everyone ({desc}), so anyone could replace what is created inside it; {advice}")
    if st.st_mode & 0o020 and st.st_gid not in TRUSTED_GIDS:
        raise Refused(f"{path} is writable by group {group} ({desc}), whose members could replace what is created inside it; {advice}")


def open_dir(path, created=None):
    """An fd of directory path, reached without following links. With
    created (a list), missing directories are made root:root 0755 and
    their paths appended to it."""
    fd = os.open("/", O_DIR)
    check_dir(os.fstat(fd), "/")
    cur = ""
    for name in split(path):
        cur += "/" + name
        try:
            nfd = os.open(name, O_DIR, dir_fd=fd)
        except FileNotFoundError:
            if created is None:
                os.close(fd)
                raise Missing(f"{cur} does not exist")
            made = True
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                # Made meanwhile by another deploy on this host (another service's): opened and checked as any existing one.
                made = False
            try:
                nfd = os.open(name, O_DIR, dir_fd=fd)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise Refused(f"{cur} is a symlink or not a directory; refusing to follow it")
                raise
            if made:
                os.fchown(nfd, 0, 0)
                os.fchmod(nfd, 0o755)
                created.append(cur)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise Refused(f"{cur} is a symlink or not a directory; refusing to follow it")
            raise
        os.close(fd)
        fd = nfd
        try:
            check_dir(os.fstat(fd), cur)
        except Refused:
            os.close(fd)
            raise
    return fd


def parent_of(path):
    parts = split(path)
    if not parts:
        raise Refused("refusing to operate on /")
    return "/" + "/".join(parts[:-1]), parts[-1]


def open_parent_if_present(path):
    """The fd of the directory holding path and the last component; (None, name) when a parent is missing."""
    d, name = parent_of(path)
    try:
        return open_dir(d), name
    except Refused as e:
        if "does not exist" in str(e):
            return None, name
        raise


def lstat_at(dfd, name):
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular(dfd, name):
    """An fd of regular file name in dfd; None when absent, -1 for a link or another kind of file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            return -1
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return -1
    return fd


def read_source(src):
    d, name = parent_of(src)
    dfd = open_dir(d)
    try:
        fd = open_regular(dfd, name)
        if fd is None or fd < 0:
            raise Refused(f"{src} is missing or not a regular file")
        with os.fdopen(fd, "rb") as f:
            return f.read()
    finally:
        os.close(dfd)


def temp_name(name):
    return f".{name[:100]}.amarktai-infra.{secrets.token_hex(8)}"


def write_at(dfd, name, data, uid, gid, mode):
    """Writes data to name in dfd through a fresh temporary file and a rename."""
    st = lstat_at(dfd, name)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise Refused(f"{name} is a directory; refusing to replace it")
    tmp = temp_name(name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise
    os.fsync(dfd)


def symlink_at(dfd, name, target):
    """Makes name in dfd a symlink to target (a fresh root-owned link renamed over it); False when it already is one."""
    st = lstat_at(dfd, name)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise Refused(f"{name} is a directory; refusing to replace it")
    if st is not None and stat.S_ISLNK(st.st_mode) and st.st_uid == 0 and os.readlink(name, dir_fd=dfd) == target:
        return False
    tmp = temp_name(name)
    os.symlink(target, tmp, dir_fd=dfd)
    try:
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        os.unlink(tmp, dir_fd=dfd)
        raise
    os.fsync(dfd)
    return True


def unlink_at(dfd, name):
    st = lstat_at(dfd, name)
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise Refused(f"{name} is a directory; refusing to remove it")
    os.unlink(name, dir_fd=dfd)
    return True


def op_install(src, dest, owner, group, mode):
    """Installs the content of root-only file src at dest (missing parents: root:root 0755)."""
    data = read_source(src)
    uid, gid = ids(owner, group)
    d, name = parent_of(dest)
    dfd = open_dir(d, created=[])
    try:
        write_at(dfd, name, data, uid, gid, int(mode, 8))
    finally:
        os.close(dfd)
    return 0


def op_same(src, dest, owner, group, mode):
    """Exit 0 when dest is a regular file (not a link, one name) with the bytes of src, the owner and the mode; else 10."""
    data = read_source(src)
    uid, gid = ids(owner, group)
    d, name = parent_of(dest)
    try:
        dfd = open_dir(d)
    except Refused:
        return 10
    try:
        fd = open_regular(dfd, name)
        if fd is None or fd < 0:
            return 10
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            same = st.st_uid == uid and st.st_gid == gid and stat.S_IMODE(st.st_mode) == int(mode, 8) and st.st_nlink == 1 and f.read() == data
        return 0 if same else 10
    finally:
        os.close(dfd)


def op_backup(dest, backup_dir, key):
    """Keeps what is at dest in root-only backup_dir under key: a regular file bytes, owner and
    mode, or the target of a root-owned symlink. Prints present or absent (anything else is not kept:
    restoring then removes whatever is at dest)."""
    bfd = open_dir(backup_dir)
    d, name = parent_of(dest)
    try:
        try:
            dfd = open_dir(d)
        except Refused:
            print("absent")
            return 0
        try:
            st = lstat_at(dfd, name)
            if st is not None and stat.S_ISLNK(st.st_mode) and st.st_uid == 0:
                write_at(bfd, key + ".symlink", os.readlink(name, dir_fd=dfd).encode(), 0, 0, 0o600)
                print("present")
                return 0
            fd = open_regular(dfd, name)
            if fd is None or fd < 0:
                print("absent")
                return 0
            with os.fdopen(fd, "rb") as f:
                fst = os.fstat(f.fileno())
                write_at(bfd, key, f.read(), fst.st_uid, fst.st_gid, stat.S_IMODE(fst.st_mode))
            print("present")
            return 0
        finally:
            os.close(dfd)
    finally:
        os.close(bfd)


def op_restore(backup_dir, key, dest):
    """Puts back what backup kept under key, or removes dest when nothing was kept."""
    bfd = open_dir(backup_dir)
    try:
        fd = open_regular(bfd, key)
        link = open_regular(bfd, key + ".symlink")
        d, name = parent_of(dest)
        dfd = open_dir(d, created=[])
        try:
            if fd is not None and fd >= 0:
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(f.fileno())
                    write_at(dfd, name, f.read(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
            elif link is not None and link >= 0:
                with os.fdopen(link, "rb") as f:
                    symlink_at(dfd, name, f.read().decode())
            else:
                unlink_at(dfd, name)
        finally:
            os.close(dfd)
    finally:
        os.close(bfd)
    return 0


def op_remove(dest, marker=None):
    """Removes the file or link at dest (never what it points to). With a marker, only a regular file whose first line is the marker."""
    dfd, name = open_parent_if_present(dest)
    if dfd is None:
        return 0
    try:
        if marker is not None:
            fd = open_regular(dfd, name)
            if fd is None:
                return 0
            if fd < 0:
                print(f"leaving {dest} alone: not a regular file written by amarktai-infra")
                return 0
            with os.fdopen(fd, "rb") as f:
                first = f.readline().rstrip(b"\n").decode("utf-8", "replace")
            if first != marker:
                print(f"leaving {dest} alone: not written by amarktai-infra")
                return 0
        if unlink_at(dfd, name):
            print(f"removed {dest}")
    finally:
        os.close(dfd)
    return 0


def op_symlink(target, link):
    """Makes link a root-owned symlink to target, atomically (a directory at link is refused)."""
    d, name = parent_of(link)
    dfd = open_dir(d)
    try:
        if symlink_at(dfd, name, target):
            print(f"linked {link} -> {target}")
    finally:
        os.close(dfd)
    return 0


def op_mkdir(path, owner, group, mode, adopt="no"):
    """Creates directory path owned owner:group with mode (missing parents root:root 0755) and
    prints parent P / created P / exists P. An existing directory is given the owner and mode
    only when it is already owned by that user, or with adopt (the library created it before)
    when it is owned by root or the trusted service account (an earlier release made the notes'
    app directory the service's; it now belongs to root); anything else (a link, a file, a
    directory of another owner) is refused."""
    uid, gid = ids(owner, group)
    d, name = parent_of(path)
    created = []
    dfd = open_dir(d, created=created)
    for c in created:
        print(f"parent {c}")
    try:
        try:
            fd = os.open(name, O_DIR, dir_fd=dfd)
            new = False
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=dfd)
            fd = os.open(name, O_DIR, dir_fd=dfd)
            new = True
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Refused(f"{path} is a symlink or not a directory; refusing to follow it")
            raise
        try:
            st = os.fstat(fd)
            if not new and st.st_uid != uid and not (adopt == "adopt" and st.st_uid in TRUSTED_UIDS):
                try:
                    who = pwd.getpwuid(st.st_uid).pw_name
                except KeyError:
                    who = str(st.st_uid)
                hint = ", or set adopt: true on this host (hosts[i].adopt) to take over a hand-made install of the service notes" if st.st_uid in TRUSTED_UIDS else ""
                raise Refused(f"{path} already exists, owned by {who}, and was not created by amarktai-infra; refusing to re-own it (chown it to {owner}:{group} yourself, or choose another path{hint})")
            os.fchown(fd, uid, gid)
            os.fchmod(fd, int(mode, 8))
        finally:
            os.close(fd)
        word = "created" if new else "exists"
        print(f"{word} {path}")
    finally:
        os.close(dfd)
    return 0


def op_rmtree(path):
    """Removes directory path and everything in it without following links."""
    dfd, name = open_parent_if_present(path)
    if dfd is None:
        return 0
    try:
        st = lstat_at(dfd, name)
        if st is None:
            return 0
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=dfd)
        else:
            shutil.rmtree(name, dir_fd=dfd)
        print(f"purged {path}")
    finally:
        os.close(dfd)
    return 0


@contextlib.contextmanager
def closing_fd(fd):
    """Closes fd when the block ends."""
    try:
        yield fd
    finally:
        os.close(fd)


def op_rmdir(path):
    """Removes directory path if it is empty (nothing when it is missing, not empty, or not safely reachable)."""
    d, name = parent_of(path)
    try:
        dfd = open_dir(d)
    except Refused:
        return 0
    with closing_fd(dfd), contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=dfd)
        print(f"removed {path}")
    return 0


${ENV_FILE_PARSER_PY}


def env_value(text, wanted):
    """The value of wanted as the service gets it from this env file (systemd's parsing), or None."""
    return parse_env(text).get(wanted)


def open_existing_file(path):
    """An fd of regular file path, reached without following a link; None when it, or a directory
    on the way, does not exist. Anything else in the way is refused: a link on the way or as the
    file, a directory an untrusted account owns, another kind of file."""
    d, base = parent_of(path)
    try:
        dfd = open_dir(d)
    except Missing:
        return None
    try:
        fd = open_regular(dfd, base)
    finally:
        os.close(dfd)
    if fd is not None and fd < 0:
        raise Refused(f"{path} is a symlink or not a regular file; refusing to follow or read it")
    return fd


def op_env_value(name, *paths):
    """Prints the value of name from the first of paths that is a regular file holding it (links
    are never followed). Prints nothing when none has it; an absent file is skipped, one that
    exists but cannot be read safely is refused (never skipped: the caller would take a missing
    value for none). The output is a secret."""
    for path in paths:
        fd = open_existing_file(path)
        if fd is None:
            continue
        with os.fdopen(fd, "rb") as f:
            value = env_value(f.read().decode("utf-8", "replace"), name)
        if value is not None:
            sys.stdout.write(value)
            return 0
    return 0


ENV_READ_MAX_BYTES = 64 * 1024


def has_control(text):
    """True when text holds a control character other than tab."""
    return any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text)


def env_name_shown(key):
    """key when it is a plain variable name (safe in a message), else a neutral word."""
    if key and key.isascii() and (key[0].isalpha() or key[0] == "_") and all(c.isalnum() or c == "_" for c in key):
        return key
    return "an entry"


def op_env_read(path):
    """Prints one JSON line: {"state":"absent"}, or {"state":"present", owner, group, mode,
    sha256, values} with every assignment as the service gets it (systemd's parsing). Refused:
    a link on the way or as the file, a directory an untrusted account owns, another kind of
    file, a second name (hard link), an owner other than root or the trusted account, more than
    64 KiB, text that is not UTF-8, a control character other than tab in a name or value.
    Messages name the path and the reason, never a value. The output is a secret."""
    fd = open_existing_file(path)
    if fd is None:
        sys.stdout.write(json.dumps({"state": "absent"}, separators=(",", ":")) + "\n")
        return 0
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        owner, group, desc = names(st)
        if st.st_nlink != 1:
            raise Refused(f"{path} has {st.st_nlink} names (a hard link), so whoever made the other name can change it; refusing to read it")
        if st.st_uid not in TRUSTED_UIDS:
            raise Refused(f"{path} is owned by uid {st.st_uid} ({desc}), not by root or the service user; refusing to read it")
        if st.st_size > ENV_READ_MAX_BYTES:
            raise Refused(f"{path} is {st.st_size} bytes, more than the {ENV_READ_MAX_BYTES} an env file may have; refusing to read it")
        data = f.read(ENV_READ_MAX_BYTES + 1)
    if len(data) > ENV_READ_MAX_BYTES:
        raise Refused(f"{path} grew past {ENV_READ_MAX_BYTES} bytes while read; refusing to read it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{path} is not UTF-8 text; refusing to read it") from None
    values = parse_env(text)
    for key, value in values.items():
        if has_control(key):
            raise Refused(f"{path} has a name with a control character; refusing to read it")
        if has_control(value):
            raise Refused(f"{path}: the value of {env_name_shown(key)} has a control character other than tab; refusing to read it")
    answer = {"state": "present", "owner": owner, "group": group, "mode": f"{stat.S_IMODE(st.st_mode):04o}", "sha256": hashlib.sha256(data).hexdigest(), "values": values}
    sys.stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
    return 0


OPS = {
    "install": op_install,
    "same": op_same,
    "backup": op_backup,
    "restore": op_restore,
    "remove": op_remove,
    "symlink": op_symlink,
    "mkdir": op_mkdir,
    "rmtree": op_rmtree,
    "rmdir": op_rmdir,
    "env-value": op_env_value,
    "env-read": op_env_read,
}


def main(argv):
    os.umask(0o077)
    while len(argv) >= 2 and argv[0] == "--trust":
        owner, _, group = argv[1].partition(":")
        uid, gid = ids(owner, group or owner)
        if uid == 0 or gid == 0:
            raise Refused("--trust names the service account, never root")
        TRUSTED_UIDS.add(uid)
        TRUSTED_GIDS.add(gid)
        argv = argv[2:]
    if not argv or argv[0] not in OPS:
        raise Refused("usage: safe-fs [--trust USER:GROUP]... " + "|".join(OPS) + " ARGS...")
    return OPS[argv[0]](*argv[1:])


def run_one(argv):
    """One operation with the trust it names only: its exit code, stdout and stderr (refused: 2)."""
    import io
    import traceback
    TRUSTED_UIDS.intersection_update({0})
    TRUSTED_GIDS.intersection_update({0})
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv) or 0
        except Refused as e:
            print(f"[amarktai-infra] refused: {e}", file=sys.stderr)
            rc = 2
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:
            traceback.print_exc()
            rc = 1
    return rc, out.getvalue().encode("utf-8", "surrogateescape"), err.getvalue().encode("utf-8", "surrogateescape")


def serve():
    """Runs operations until stdin closes, one interpreter for a whole activation. A request is a
    line with the argument count, then each argument ending in NUL; the reply is a line
    "rc len(stdout) len(stderr)", then those bytes."""
    inp, outp = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = inp.readline()
        if not line:
            return 0
        args = []
        for _ in range(int(line)):
            arg = bytearray()
            while True:
                c = inp.read(1)
                if not c:
                    return 1
                if c == b"\0":
                    break
                arg += c
            args.append(os.fsdecode(bytes(arg)))
        rc, out, err = run_one(args)
        outp.write(b"%d %d %d\n" % (rc, len(out), len(err)) + out + err)
        outp.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    rc, out, err = run_one(sys.argv[1:])
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
    sys.exit(rc)
`;

/**
 * Shell lines that define `safe_fs_serve`, which starts the helper once as a coprocess, and
 * `safe_fs_call`, which has it run one operation (same arguments, exit code, stdout and stderr as
 * `safe_fs`): one Python start for all of a script's operations instead of one each (0.3–0.8 s
 * apiece on a slow host). While the coprocess is not running, `safe_fs_call` runs `safe_fs`.
 */
export function safeFsServeFunctions(): string[] {
    return [
        'safe_fs_serve() { coproc SAFE_FS_SERVER { exec python3 -c "$SAFE_FS_PY" --serve; }; }',
        "safe_fs_call() {",
        '  if [ -z "${SAFE_FS_SERVER_PID:-}" ] || ! kill -0 "$SAFE_FS_SERVER_PID" 2>/dev/null; then safe_fs "$@"; return; fi',
        '  local rc olen elen out="" err=""',
        '  { printf \'%d\\n\' "$#"; printf \'%s\\0\' "$@"; } >&"${SAFE_FS_SERVER[1]}" || { echo "[amarktai-infra] the file helper stopped" >&2; return 1; }',
        '  read -r rc olen elen <&"${SAFE_FS_SERVER[0]}" || { echo "[amarktai-infra] the file helper stopped" >&2; return 1; }',
        '  if [ "$olen" -gt 0 ]; then IFS= read -r -d "" -N "$olen" out <&"${SAFE_FS_SERVER[0]}" || true; fi',
        '  if [ "$elen" -gt 0 ]; then IFS= read -r -d "" -N "$elen" err <&"${SAFE_FS_SERVER[0]}" || true; fi',
        '  printf \'%s\' "$out"',
        '  printf \'%s\' "$err" >&2',
        '  return "$rc"',
        "}",
    ];
}

/**
 * Shell lines that define `safe_fs`, which runs the helper:
 * `safe_fs [--trust USER:GROUP]... OP ARGS...` (exit 0 done, 10 differs, 2 refused).
 */
export function safeFsFunction(): string[] {
    return [`SAFE_FS_PY=${quoteScript(SAFE_FS_PY)}`, 'safe_fs() { python3 -c "$SAFE_FS_PY" "$@"; }'];
}
