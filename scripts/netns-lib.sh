# shellcheck shell=bash
# Helpers for tests and benchmarks that build network namespaces.
# Source it, then call nl_init once:
#
#   . "$(dirname "$0")/../../scripts/netns-lib.sh"
#   nl_init dp                  # unique suffix, temp dir, cleanup trap
#   nl_topology                 # client <-> fw <-> server (see below)
#   nl_fw_bpffs                 # private bpffs at /sys/fs/bpf for fw commands
#   nl_fw ip link set dev in0 xdp obj build/pfsync_xdp.o sec xdp
#   nl_wait_until 5 nl_in "$NL_CLIENT" ping -c1 -W1 10.201.2.2
#
# Everything created is registered with nl_on_cleanup and undone in reverse
# order by the EXIT trap, on success and on failure alike. Background
# processes are killed by the PID recorded when they were started.
#
# Reporting: scripts/run-tests.sh counts checks by reading these lines of a
# suite's output (stdout or stderr, each at the start of a line, optionally
# after nl_log's "[script] " prefix; see scripts/count-checks.py):
#
#   PASS: WHAT                   nl_ok / nl_pass: a check passed
#   FAIL: WHAT                   nl_fail: a check failed (the suite goes on)
#   SKIP: WHAT: REASON           nl_skip: a check not run, and why
#   ok N - WHAT                  TAP, N optional (test_decode.sh)
#   not ok N - WHAT
#   ok N - WHAT # SKIP REASON
#
# A suite that prints none of them fails, as does one exiting non-zero. A
# SKIP's REASON must say what is missing; under CI=true it fails unless a
# pattern in tests/skip-ok.txt accepts it (a kernel facility the suite's own
# probe found missing, never a tool scripts/deps.sh installs).

NL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # for the scripts that source this file
NL_ROOT=$(cd "$NL_LIB_DIR/.." && pwd)

NL_CLEANUP=()
NL_FAILED=0

# Prints a message to stderr prefixed with the script name.
nl_log()
{
	echo "[$(basename "$0")] $*" >&2
}

# Records a failure and keeps going, so one run reports every problem.
nl_fail()
{
	nl_log "FAIL: $*"
	NL_FAILED=$((NL_FAILED + 1))
}

# Records a passed check.
nl_ok()
{
	nl_log "PASS: $*"
}

nl_pass()
{
	nl_ok "$@"
}

# nl_skip [WHAT] REASON: records a check that was not run and why (WHAT
# defaults to the script's name). REASON names the missing facility.
nl_skip()
{
	if [ $# -ge 2 ]; then
		nl_log "SKIP: $1: ${*:2}"
	else
		nl_log "SKIP: $(basename "$0"): $1"
	fi
}

# Exits with an error right away (set-up problems after which nothing
# else can be checked).
nl_die()
{
	nl_log "ERROR: $*"
	exit 1
}

# Pushes a shell command (one string) to run at exit, last in first out.
nl_on_cleanup()
{
	NL_CLEANUP+=("$1")
}

nl_run_cleanup()
{
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#NL_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${NL_CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	NL_CLEANUP=()
	return "$rc"
}

# nl_init TAG: needs root; sets NL_ID (TAG + PID, unique per run), NL_TMP
# (a private temp dir) and the cleanup trap.
nl_init()
{
	local tag=${1:-t}
	[ "$(id -u)" -eq 0 ] || nl_die "must run as root (namespaces, BPF)"
	NL_ID="${tag}$$"
	NL_TMP=$(mktemp -d "/tmp/pfsync-${NL_ID}.XXXXXX")
	trap nl_run_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	nl_on_cleanup "rm -rf '$NL_TMP'"
	# runs before the rm: also catches mounts whose own cleanup entry was
	# registered in a $(...) subshell and lost (PIN=$(nl_bpffs_tmp))
	nl_on_cleanup "nl_umount_under '$NL_TMP'"
}

# nl_umount_under DIR: lazily unmounts every mount point below DIR.
nl_umount_under()
{
	local target targets=()
	# the list first: unmounting while reading /proc/self/mounts skips entries
	while read -r _ target _; do
		case "$target" in
		"$1"/*) targets+=("$target") ;;
		esac
	done </proc/self/mounts
	for target in "${targets[@]}"; do
		umount -l "$target"
	done
}

# nl_wait_until SECONDS CMD...: runs CMD until it succeeds or the deadline
# passes (returns 1). Polls every NL_POLL_S seconds (default 0.05; the
# benches, which time what they wait for, poll finer); this is a deadline,
# not a delay.
nl_wait_until()
{
	# NL_DEADLINE_SCALE stretches every deadline on slow machines (VMs, TCG)
	local seconds=$(($1 * ${NL_DEADLINE_SCALE:-1}))
	shift
	local deadline=$((${EPOCHREALTIME/./} + seconds * 1000000))
	while true; do
		if "$@"; then
			return 0
		fi
		if [ "${EPOCHREALTIME/./}" -ge "$deadline" ]; then
			return 1
		fi
		sleep "${NL_POLL_S:-0.05}"
	done
}

# nl_quiet CMD...: CMD with its output discarded (a poll's probe)
nl_quiet()
{
	"$@" >/dev/null 2>&1
}

# nl_wait_quiet SECONDS CMD...: nl_wait_until with CMD's output discarded
nl_wait_quiet()
{
	nl_wait_until "$1" nl_quiet "${@:2}"
}

# nl_netns_add NAME: creates a namespace removed at exit, loopback up.
nl_netns_add()
{
	ip netns add "$1" || nl_die "cannot create namespace $1"
	nl_on_cleanup "ip netns del '$1'"
	# No duplicate address detection on the links made or moved in later:
	# their link-local addresses would stay tentative for a second or two,
	# and neighbour discovery meanwhile delays the first IPv6 packets past
	# TCP's SYN timeout (seen as SYN retransmissions in test_torture when
	# traffic started right after the topology was made).
	nl_in "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 ||
		nl_die "cannot turn off duplicate address detection in $1"
	ip -n "$1" link set dev lo up
}

# nl_in NS CMD...: runs CMD in namespace NS's network only (the host's
# mounts, so the host bpffs and temp dirs stay visible).
nl_in()
{
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# nl_veth NS_A IF_A NS_B IF_B: a veth pair created directly inside the two
# namespaces, so names never collide with the host or other runs.
nl_veth()
{
	ip link add name "$2" netns "$1" type veth peer name "$4" netns "$3" ||
		nl_die "cannot create veth $1/$2 <-> $3/$4"
	ip -n "$1" link set dev "$2" up
	ip -n "$3" link set dev "$4" up
}

# nl_addr NS IF ADDR/LEN: adds an address; IPv6 without DAD so it is usable
# at once.
nl_addr()
{
	case "$3" in
	*:*) ip -n "$1" -6 addr add "$3" dev "$2" nodad ;;
	*) ip -n "$1" addr add "$3" dev "$2" ;;
	esac
}

# nl_topology: three namespaces
#
#   $NL_CLIENT eth0 ---- in0 $NL_FW out0 ---- eth0 $NL_SERVER
#   10.201.1.2/24        .1.1    .2.1         10.201.2.2/24
#   fd00:201:1::2/64                          fd00:201:2::2/64
#
# The firewall forwards (IPv4 and IPv6); client and server route via it.
# Sets NL_CLIENT, NL_FW, NL_SERVER and the address variables below.
nl_topology()
{
	NL_CLIENT="pfcl-$NL_ID"
	NL_FW="pffw-$NL_ID"
	NL_SERVER="pfsv-$NL_ID"
	NL_FW_IN=in0
	NL_FW_OUT=out0
	NL_CLIENT4=10.201.1.2
	NL_FW_IN4=10.201.1.1
	NL_SERVER4=10.201.2.2
	NL_FW_OUT4=10.201.2.1
	NL_CLIENT6=fd00:201:1::2
	NL_FW_IN6=fd00:201:1::1
	NL_SERVER6=fd00:201:2::2
	NL_FW_OUT6=fd00:201:2::1

	nl_netns_add "$NL_CLIENT"
	nl_netns_add "$NL_FW"
	nl_netns_add "$NL_SERVER"
	nl_veth "$NL_CLIENT" eth0 "$NL_FW" "$NL_FW_IN"
	nl_veth "$NL_FW" "$NL_FW_OUT" "$NL_SERVER" eth0

	nl_addr "$NL_CLIENT" eth0 "$NL_CLIENT4/24"
	nl_addr "$NL_CLIENT" eth0 "$NL_CLIENT6/64"
	nl_addr "$NL_FW" "$NL_FW_IN" "$NL_FW_IN4/24"
	nl_addr "$NL_FW" "$NL_FW_IN" "$NL_FW_IN6/64"
	nl_addr "$NL_FW" "$NL_FW_OUT" "$NL_FW_OUT4/24"
	nl_addr "$NL_FW" "$NL_FW_OUT" "$NL_FW_OUT6/64"
	nl_addr "$NL_SERVER" eth0 "$NL_SERVER4/24"
	nl_addr "$NL_SERVER" eth0 "$NL_SERVER6/64"

	ip -n "$NL_CLIENT" route add default via "$NL_FW_IN4"
	ip -n "$NL_CLIENT" -6 route add default via "$NL_FW_IN6"
	ip -n "$NL_SERVER" route add default via "$NL_FW_OUT4"
	ip -n "$NL_SERVER" -6 route add default via "$NL_FW_OUT6"
	nl_in "$NL_FW" sysctl -qw net.ipv4.ip_forward=1
	nl_in "$NL_FW" sysctl -qw net.ipv6.conf.all.forwarding=1
}

# nl_fw_pair CLI SRV SW FWA FWB NET: a redundant firewall pair
#
#   CLI eth0 -- br-lan (SW) -- lan0 FWA wan0 -- br-wan (SW) -- eth0 SRV
#   NET.1.10       lan0 FWB wan0                             NET.2.10
#               FWA sync0 NET.3.1 <-- veth --> NET.3.2 sync0 FWB
#
# Both firewalls sit on both bridges (FWA .2, FWB .3 on NET.1/24 and
# NET.2/24) and forward; the caller adds routes, gateways and rules.
nl_fw_pair()
{
	local cli=$1 srv=$2 sw=$3 fwa=$4 fwb=$5 net=$6 ns br p fw n=2
	for ns in "$cli" "$srv" "$sw" "$fwa" "$fwb"; do
		nl_netns_add "$ns"
	done
	for br in br-lan br-wan; do
		ip -n "$sw" link add "$br" type bridge || nl_die "cannot create $br"
		ip -n "$sw" link set "$br" up
	done
	nl_veth "$cli" eth0 "$sw" lcli
	nl_veth "$fwa" lan0 "$sw" lfwa
	nl_veth "$fwb" lan0 "$sw" lfwb
	nl_veth "$fwa" wan0 "$sw" wfwa
	nl_veth "$fwb" wan0 "$sw" wfwb
	nl_veth "$srv" eth0 "$sw" wsrv
	for p in lcli lfwa lfwb; do ip -n "$sw" link set "$p" master br-lan; done
	for p in wfwa wfwb wsrv; do ip -n "$sw" link set "$p" master br-wan; done
	nl_veth "$fwa" sync0 "$fwb" sync0
	nl_addr "$cli" eth0 "$net.1.10/24"
	nl_addr "$srv" eth0 "$net.2.10/24"
	for fw in "$fwa" "$fwb"; do
		nl_addr "$fw" lan0 "$net.1.$n/24"
		nl_addr "$fw" wan0 "$net.2.$n/24"
		nl_addr "$fw" sync0 "$net.3.$((n - 1))/24"
		nl_in "$fw" sysctl -qw net.ipv4.ip_forward=1
		n=$((n + 1))
	done
}

# nl_offloads_off NS IF...: no GSO/TSO/GRO, so that one TCP segment is one
# packet on every hop (fair packet counts whether or not XDP is attached).
nl_offloads_off()
{
	local ns=$1 ifname
	shift
	command -v ethtool >/dev/null || return 0
	for ifname in "$@"; do
		nl_in "$ns" ethtool -K "$ifname" tso off gso off gro off >/dev/null 2>&1 || true
	done
}

# nl_bpffs_tmp: mounts a fresh bpffs on a temp dir (removed at exit) and
# prints its path. For libbpf users that take a pin directory.
nl_bpffs_tmp()
{
	local dir="$NL_TMP/bpffs.$RANDOM"
	mkdir -p "$dir"
	mount -t bpf bpf "$dir" || nl_die "cannot mount bpffs on $dir"
	nl_on_cleanup "umount -l '$dir'"
	echo "$dir"
}

# nl_fw_bpffs: gives the firewall namespace its own persistent mount
# namespace with a fresh bpffs at /sys/fs/bpf. Commands run with nl_fw see
# it (so iproute2 pins in a /sys/fs/bpf/tc/globals private to this run);
# the host's /sys/fs/bpf is untouched. `ip netns exec` would not do: it
# remounts /sys per command, so pins would vanish with each process.
nl_fw_bpffs()
{
	local holder="$NL_TMP/mntns"
	mkdir -p "$holder"
	# A bind mount made private: unshare may only bind a namespace file
	# on a mount that does not propagate.
	mount --bind "$holder" "$holder" || nl_die "cannot bind $holder"
	nl_on_cleanup "umount -l '$holder'"
	mount --make-private "$holder"
	touch "$holder/mnt"
	unshare --mount="$holder/mnt" --propagation private \
		mount -t bpf bpf /sys/fs/bpf || nl_die "cannot create a mount namespace with bpffs"
	nl_on_cleanup "umount '$holder/mnt'"
	NL_FW_MNTNS="$holder/mnt"
	# shellcheck disable=SC2034 # for the scripts that source this file
	NL_FW_PIN=/sys/fs/bpf/tc/globals
	nl_acct_watch fw "$NL_FW_PIN" nl_fw
}

# nl_fw CMD...: runs CMD in the firewall's network namespace and, after
# nl_fw_bpffs, its private mount namespace.
nl_fw()
{
	if [ -n "${NL_FW_MNTNS:-}" ]; then
		# --wd: entering a mount namespace would otherwise start in its /
		nsenter --net="/run/netns/$NL_FW" --mount="$NL_FW_MNTNS" --wd="$PWD" -- "$@"
	else
		nsenter --net="/run/netns/$NL_FW" -- "$@"
	fi
}

# nl_bg VAR NS CMD...: starts CMD in the background inside NS, stores its
# PID in VAR and registers a kill of exactly that PID.
nl_bg()
{
	local var=$1 ns=$2
	shift 2
	nsenter --net="/run/netns/$ns" -- "$@" &
	local pid=$!
	printf -v "$var" '%s' "$pid"
	nl_on_cleanup "kill $pid; wait $pid"
}

# nl_file_has FILE TEXT: true once FILE exists and contains TEXT (for
# nl_wait_until on output of background processes).
nl_file_has()
{
	[ -f "$1" ] && grep -q -- "$2" "$1"
}

# nl_notify_listen SOCK LOG: the notification socket systemd would give an
# agent (NOTIFY_SOCKET=SOCK): each datagram becomes one line of LOG. Returns
# once it listens; stopped at exit.
nl_notify_listen()
{
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ").strip() + "\n")
        out.flush()' "$1" "$2" &
	local pid=$!
	nl_on_cleanup "kill $pid; wait $pid"
	nl_wait_until 5 test -S "$1" || nl_die "notify listener on $1 did not start"
}

# nl_build: the build's paths, from $PFSYNC_BUILD and $PFSYNC_OBJ: BUILD,
# OBJ (pfsync_xdp.o), AGENT, CTL and DRV (bench/sync_driver, whose
# BPF_PROG_RUN loads $PFSYNC_BPF_OBJ: set to OBJ).
nl_build()
{
	BUILD=${PFSYNC_BUILD:-$PWD/build}
	OBJ=${PFSYNC_OBJ:-$BUILD/pfsync_xdp.o}
	AGENT=$BUILD/pfsync-agent
	CTL=$BUILD/pfsyncctl
	DRV=$BUILD/bench/sync_driver
	export PFSYNC_BPF_OBJ=$OBJ
}

# nl_need FILE...: dies unless each one was built
nl_need()
{
	local f
	for f in "$@"; do
		[ -e "$f" ] || nl_die "$f not built (make tests)"
	done
}

# nl_need_tools TOOL...: dies unless each command is installed
nl_need_tools()
{
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || nl_die "$tool missing (scripts/deps.sh)"
	done
}

# `cmd | nl_has PATTERN`: grep that reads its input to the end. grep -q
# exits at the first match, and a writer that flushes more afterwards (ip
# flushes per line, big outputs go out in several writes) dies of SIGPIPE,
# which under pipefail fails the pipeline although the line was there.
nl_has()
{
	grep "$@" >/dev/null
}

# nl_absent CMD...: an absence check that cannot pass on a read error. CMD
# is a lookup exiting 0 when it found the thing, 1 when it read the data and
# the thing is not there, anything else when it could not read. True only
# for 1; for another status it logs that nothing could be told and returns 2.
nl_absent()
{
	local rc=0
	"$@" >/dev/null || rc=$?
	case $rc in
	0) return 1 ;;
	1) return 0 ;;
	*)
		nl_log "cannot tell whether absent: $* exited $rc"
		return 2
		;;
	esac
}

# ---- accounting (issue 12) ------------------------------------------------------
# Every packet a datapath program sees ends in exactly one outcome counter;
# `pfsyncctl stats --json` gives, per program, `unaccounted` (seen minus the
# outcomes), which must be 0. nl_finish checks every pin dir registered here:
# nl_fw_bpffs registers the firewall's, nl_agent_run each --pin-dir DIR it is
# given. Other pin dirs: one nl_acct_watch line (or nl_assert_accounted).

declare -gA NL_ACCT_RUNNER=()

# nl_acct_watch LABEL PIN [RUNNER]: check PIN's accounting in nl_finish;
# RUNNER (e.g. nl_fw) prefixes the pfsyncctl command.
nl_acct_watch()
{
	NL_ACCT_RUNNER["$1|$2"]=${3:-}
}

# the named program's unaccounted packets in `pfsyncctl stats --json` JSON
nl_acct_field()
{
	python3 "$NL_LIB_DIR/ctlq.py" - "datapath.outcomes.$2.$3" <<<"$1"
}

nl_acct_stats()
{
	local pin=$1 runner=$2 ctl=${CTL:-}
	# the test's pfsyncctl, or the build's when that one is gone (uninstalled)
	[ -x "$ctl" ] || ctl=${PFSYNC_BUILD:-$NL_ROOT/build}/pfsyncctl
	$runner "$ctl" --pin-dir "$pin" --ctl "$NL_TMP/nl-acct-none.sock" stats --json 2>/dev/null
}

# true when no program of PIN has a packet without an outcome
nl_acct_zero()
{
	local json prog
	json=$(nl_acct_stats "$1" "$2") || return 1
	for prog in xdp tc; do
		[ "$(nl_acct_field "$json" "$prog" unaccounted)" = 0 ] || return 1
	done
}

# nl_assert_accounted LABEL PIN [RUNNER]: fails unless every packet each
# program of PIN saw ended in one outcome. Polled for a moment: a packet in
# flight is counted as seen a few microseconds before its outcome.
nl_assert_accounted()
{
	local label=$1 pin=$2 runner=${3:-} json prog report=""
	if ! json=$(nl_acct_stats "$pin" "$runner"); then
		nl_log "accounting $label: no datapath maps at $pin (nothing loaded), not checked"
		return 0
	fi
	if ! nl_wait_until 3 nl_acct_zero "$pin" "$runner"; then
		json=$(nl_acct_stats "$pin" "$runner")
		nl_fail "accounting $label: unaccounted packets: xdp $(nl_acct_field "$json" xdp unaccounted), tc $(nl_acct_field "$json" tc unaccounted)"
		return 1
	fi
	json=$(nl_acct_stats "$pin" "$runner")
	for prog in xdp tc; do
		report+=" $prog $(nl_acct_field "$json" "$prog" seen) seen,"
	done
	nl_pass "accounting $label:$report 0 unaccounted"
}

nl_acct_check_all()
{
	local entry
	for entry in "${!NL_ACCT_RUNNER[@]}"; do
		nl_assert_accounted "${entry%%|*}" "${entry#*|}" "${NL_ACCT_RUNNER[$entry]}"
	done
}

# nl_finish: checks the accounting of every watched pin dir, stops the
# agents still running (their exit status checked), prints a summary and
# exits 1 if any check failed.
nl_finish()
{
	local name
	nl_acct_check_all
	for name in "${!NL_AGENT_PID[@]}"; do
		nl_agent_stop "$name"
	done
	if [ "$NL_FAILED" -ne 0 ]; then
		nl_log "$NL_FAILED check(s) failed"
		exit 1
	fi
	nl_log "all checks passed"
	exit 0
}

# ---- pfsync-agent processes ------------------------------------------------------

declare -gA NL_AGENT_PID=() NL_AGENT_SOCK=()

# nl_agent_run NAME NS SOCK ARGS...: starts $AGENT (the caller's pfsync-agent)
# in namespace NS with --ctl SOCK and ARGS, output appended to
# $NL_TMP/agentNAME.log; killed on cleanup. Returns once the control socket
# exists, dies with the log's tail if it does not appear.
nl_agent_run()
{
	local name=$1 ns=$2 sock=$3 pid arg prev=
	shift 3
	for arg in "$@"; do
		[ "$prev" = --pin-dir ] && nl_acct_watch "agent $name" "$arg"
		prev=$arg
	done
	nsenter --net="/run/netns/$ns" -- "${AGENT:?}" --ctl "$sock" "$@" \
		>>"$NL_TMP/agent$name.log" 2>&1 &
	pid=$!
	nl_on_cleanup "kill $pid; wait $pid"
	NL_AGENT_PID[$name]=$pid
	NL_AGENT_SOCK[$name]=$sock
	# a deadline, not a wait: loading and verifying the datapath took over
	# 10 s on a loaded 2-core machine (load average 17)
	nl_wait_until 30 test -S "$sock" ||
		{ tail -5 "$NL_TMP/agent$name.log" >&2; nl_die "agent $name did not start"; }
}

# nl_release_paths NS PIN CHECK: the defer release paths (--defer-release)
# the kernel allows in namespace NS, probed by the agent itself with
# throw-away frames (run it before any agent of NS attaches anything). Sets
# NL_RELEASE_PATHS to the allowed ones; records a skip (nl_skip) `CHECK
# with --defer-release PATH: kernel refuses it: why` for each refused one.
# Returns 1 when none is allowed (defer cannot work at all).
nl_release_paths()
{
	local ns=$1 pin=$2 check=$3 out line
	out=$(nsenter --net="/run/netns/$ns" -- "${AGENT:?}" --probe-defer-release --pin-dir "$pin" \
		--obj "${OBJ:?}" 2>&1)
	NL_RELEASE_PATHS=()
	while IFS= read -r line; do
		case $line in
		redirect:\ ok | live:\ ok) NL_RELEASE_PATHS+=("${line%%:*}") ;;
		redirect:\ refused:* | live:\ refused:*)
			nl_skip "$check with --defer-release ${line%%:*}" "kernel refuses it: ${line#*: refused: }" ;;
		esac
	done <<<"$out"
	[ "${#NL_RELEASE_PATHS[@]}" -gt 0 ] || { nl_log "no defer release path: $out"; return 1; }
}

# nl_pid_exited PID: gone, or a zombie waiting to be reaped
nl_pid_exited()
{
	[ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# nl_exit_means STATUS: a wait status in words
nl_exit_means()
{
	if [ "$1" -eq 124 ]; then
		echo "ignored SIGTERM, killed"
	elif [ "$1" -gt 128 ]; then
		echo "killed by signal $(kill -l "$(($1 - 128))" 2>/dev/null || echo $(($1 - 128)))"
	else
		echo "exit code $1"
	fi
}

# nl_agent_stop NAME: SIGTERM and wait; returns the agent's exit status (0
# when it was not running; 124 when it ignored SIGTERM for 10 s and was
# killed, so that such an agent fails its test instead of hanging the suite).
# Any status but 0 is recorded as a failed check: an agent that crashes or
# hangs on SIGTERM fails its test even where the caller ignores the status.
# Its control socket is gone afterwards.
nl_agent_stop()
{
	local pid=${NL_AGENT_PID[$1]:-} rc
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	if nl_wait_until 10 nl_pid_exited "$pid"; then
		wait "$pid"
		rc=$?
	else
		nl_log "agent $1 (PID $pid) ignored SIGTERM for 10 s: killed"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		rc=124
	fi
	unset "NL_AGENT_PID[$1]"
	rm -f "${NL_AGENT_SOCK[$1]}"
	[ "$rc" -eq 0 ] || nl_fail "agent $1 exited with status $rc on SIGTERM ($(nl_exit_means "$rc"))"
	return $rc
}

# ---- asking an agent and a table -------------------------------------------------

# nl_ctlq NAME CMD [FIELD]: scripts/ctlq.py on the control socket
# $NL_TMP/NAME.sock (the path the suites give nl_agent_run)
nl_ctlq()
{
	python3 "$NL_LIB_DIR/ctlq.py" "$NL_TMP/$1.sock" "${@:2}"
}

# nl_bulk_done NAME: the agent's bulk update finished
nl_bulk_done()
{
	nl_ctlq "$1" status 2>/dev/null | nl_has '^bulk: done'
}

# nl_bulk_settled NAME: the agent's bulk update finished or gave up (no peer)
nl_bulk_settled()
{
	nl_ctlq "$1" status 2>/dev/null | nl_has '^bulk: \(done\|failed\)'
}

# nl_states PIN CMD ARGS...: scripts/pfsync_states.py on the pinned
# pfsync_states of PIN. Its status (1 = not found), or 2 when the map
# could not be read, so that an absence check cannot pass on a read error.
nl_states()
{
	local pin=$1 dump
	shift
	dump=$(bpftool -j map dump pinned "$pin/pfsync_states") || return 2
	python3 "$NL_LIB_DIR/pfsync_states.py" "$@" <<<"$dump"
}

# nl_fp_forwarded PIN [RUNNER...]: packets the XDP fast path forwarded,
# both directions, from `pfsyncctl stats --json` on PIN's maps, run through
# RUNNER when PIN is only visible there (nl_fw for the firewall's bpffs).
nl_fp_forwarded()
{
	local pin=$1 json a b
	shift
	json=$("$@" "${CTL:?}" --pin-dir "$pin" --ctl "$NL_TMP/none.sock" stats --json) || return 1
	a=$(python3 "$NL_LIB_DIR/ctlq.py" - datapath.fastpath.forwarded.initiator <<<"$json") || return 1
	b=$(python3 "$NL_LIB_DIR/ctlq.py" - datapath.fastpath.forwarded.responder <<<"$json") || return 1
	echo $((a + b))
}

# nl_count_creator PIN CREATOR: states of that creator id in PIN's table
nl_count_creator()
{
	nl_states "$1" count-creator "$2"
}
