#!/usr/bin/env python3
"""`apptainer` for containers/build-rootfs.sh: the calls Snakemake's `--sdm apptainer`
makes (`apptainer --version`, `apptainer exec ...`), run with Charliecloud's ch-run on the
image's root filesystem (a directory, as an Apptainer sandbox image is one).

Apptainer is not in Debian bookworm, so this is how the test runs Snakemake's own wrapping
of every job. It does what `apptainer exec` does with Snakemake's options: the host's
environment passes in, PATH starts from Apptainer's default and then the image's
%environment (written by build-rootfs.sh to /.singularity.d/env/90-environment.sh, where
`apptainer build` writes it) is sourced; `--home DIR` binds DIR and makes it HOME and the
working directory; `--bind SRC[:DST]` binds; `--pwd DIR` sets the working directory. A
bind's mount point is created in the root filesystem first (Apptainer makes it in an
overlay). `--nv` is refused: there is no GPU here. Anything else is an error, so an option
this stand-in does not know cannot pass silently.
"""

import os
import sys
from pathlib import Path

APPTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENTER = 'for f in /.singularity.d/env/*.sh; do [ -e "$f" ] && . "$f"; done; exec "$@"'


def main(args):
    if args == ["--version"]:
        print("apptainer version 1.3.4")  # Snakemake parses the last word
        return 0
    args = [a for a in args if a not in ("--quiet", "--silent", "-q", "-s")]
    if not args or args[0] != "exec":
        print(f"apptainer stand-in: unsupported {args}", file=sys.stderr)
        return 2
    args, binds, home, pwd = args[1:], [], None, None
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("--home", "--bind", "-B", "--pwd"):
            value = args.pop(0)
            if option == "--home":
                home = value
            elif option == "--pwd":
                pwd = value
            else:
                for item in value.split(","):
                    source, _, dest = item.partition(":")
                    binds.append((source, (dest or source).split(":")[0]))
        else:
            print(f"apptainer stand-in: option {option} not supported here", file=sys.stderr)
            return 2
    image, command = Path(args[0]), args[1:]
    if not (image / ".singularity.d").is_dir():
        print(f"apptainer stand-in: {image} is not a root filesystem made by build-rootfs.sh", file=sys.stderr)
        return 2
    if home:
        binds.append((home, home))
    argv = ["ch-run", f"--set-env=PATH={APPTAINER_PATH}"]
    if home:
        argv.append(f"--set-env=HOME={home}")
    for source, dest in binds:
        (image / dest.lstrip("/")).mkdir(parents=True, exist_ok=True)
        argv += ["-b", f"{source}:{dest}"]
    cwd = pwd or home or "/"
    argv += ["--cd", cwd, str(image), "--", "/bin/sh", "-c", ENTER, "sh", *command]
    os.execvp("ch-run", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
