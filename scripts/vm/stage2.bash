# Second stage of the scripts/vm-run guest: runs under the host's bash,
# chroot'ed into the host's root file system.
#   fd 3: the caller's environment, NUL-separated NAME=VALUE
#   fd 4: NUL-separated cwd, command, arguments
# It replaces itself with the command, so the exit status is the command's.
set -u
mapfile -t -d '' vars <&3
mapfile -t -d '' argv <&4
exec 3<&- 4<&-

cwd=${argv[0]}
argv=("${argv[@]:1}")

keep=()
tmpdir=
for kv in "${vars[@]}"; do
	name=${kv%%=*}
	# env -i can pass any name, but a name no shell can read is more likely
	# to trip something than to be needed; the terminal ones describe the
	# caller's terminal, which the command does not have.
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
	case $name in
	TERM | TERMCAP | COLORTERM | COLUMNS | LINES) continue ;;
	TMPDIR) tmpdir=${kv#*=} ;;
	esac
	keep+=("$kv")
done
# The host's root is read-only in here; a TMPDIR on it would make every
# temporary file fail.
if [[ -n $tmpdir && ! -w $tmpdir ]]; then
	keep+=("TMPDIR=/tmp")
fi

cd -- "$cwd" || {
	echo "vm-run: cannot change to $cwd inside the VM" >&2
	exit 125
}
exec env -i -- "${keep[@]}" "${argv[@]}"
