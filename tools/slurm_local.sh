#!/usr/bin/env bash
# A real single-node Slurm on this machine, for CI and for trying run_all.py --launcher slurm.
#
#   sudo bash tools/slurm_local.sh start     # install slurm-wlm and munge if missing, start, wait for the node
#   bash tools/slurm_local.sh status         # the daemons and sinfo
#   sudo bash tools/slurm_local.sh stop      # stop the daemons by their pid files
#
# Debian / Ubuntu, as root, without systemd: munged runs as user munge, slurmctld and slurmd as
# root. The node is "localhost" (127.0.0.1) with the CPUs and memory `slurmd -C` finds; no
# accounting (no slurmdbd, so no sacct: run_all.py polls squeue instead). The configuration is
# /etc/slurm/slurm.conf, written by this script and marked as such (a slurm.conf it did not
# write is left alone: start refuses); logs and state are under $CFIN_SLURM_DIR
# (default /tmp/cfin-slurm).
set -euo pipefail

DIR="${CFIN_SLURM_DIR:-/tmp/cfin-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by cfin-bench tools/slurm_local.sh"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurm/slurmctld.pid
SLURMD_PID=/run/slurm/slurmd.pid

say() { echo "slurm_local: $*" >&2; }
die() { say "$*"; exit 1; }

running() {  # the process of pid file $1 is alive
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get; install them"
    say "installing slurm-wlm and munge (apt-get)"
    local tries=0
    until DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge \
        >"$DIR/apt.log" 2>&1; do
        tries=$((tries + 1))
        if grep -q "Unable to locate package\|has no installation candidate" "$DIR/apt.log" && ((tries == 1)); then
            apt-get update -qq >>"$DIR/apt.log" 2>&1 || true
        elif grep -q "Could not get lock\|dpkg was interrupted\|is held by process" "$DIR/apt.log" && ((tries < 30)); then
            sleep 5  # another apt-get is running
        else
            tail -5 "$DIR/apt.log" >&2
            die "apt-get install slurm-wlm munge failed (log: $DIR/apt.log)"
        fi
    done
}

write_config() {
    if [[ -e "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script (a real Slurm's?); not touching it"
    fi
    local node
    # "NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..": this machine, named localhost
    node=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //')
    mkdir -p /etc/slurm "$DIR/slurmctld" "$DIR/slurmd"
    cat >"$CONF.tmp" <<EOF
$MARK (start|stop|status); state and logs in $DIR
ClusterName=cfinlocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=$DIR/slurmctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
    mv "$CONF.tmp" "$CONF"
}

node_idle() {
    local state
    state=$(sinfo --noheader --nodes=localhost --format=%T 2>/dev/null | head -1) || return 1
    [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]
}

start() {
    [[ $(id -u) == 0 ]] || die "start needs root (it installs packages and starts the daemons as root and munge)"
    mkdir -p "$DIR"
    if running "$CTLD_PID" && running "$SLURMD_PID" && running "$MUNGE_PID" && node_idle; then
        say "already running: $(sinfo --noheader --format='%P %D %T' | head -1)"
        return
    fi
    install_packages
    write_config
    mkdir -p /run/munge /run/slurm /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    running "$MUNGE_PID" || runuser -u munge -- /usr/sbin/munged
    running "$CTLD_PID" || /usr/sbin/slurmctld
    running "$SLURMD_PID" || /usr/sbin/slurmd -N localhost
    for _ in $(seq 1 60); do
        if node_idle; then
            say "started: partition $(sinfo --noheader --format='%P %D node(s) %T, %c CPUs' | head -1); config $CONF, logs $DIR"
            return
        fi
        sleep 0.5
    done
    sinfo >&2 || true
    tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    die "the node did not become idle within 30 s (logs in $DIR)"
}

stop_one() {  # pid file, name
    if ! running "$1"; then
        rm -f "$1"
        return
    fi
    local pid
    pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return; }
        sleep 0.2
    done
    say "$2 (pid $pid) did not stop within 10 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

stop() {
    stop_one "$SLURMD_PID" slurmd
    stop_one "$CTLD_PID" slurmctld
    stop_one "$MUNGE_PID" munged
    say "stopped"
}

status() {
    local name file
    for name in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
        file=${name#*:}
        if running "$file"; then echo "${name%%:*}: running (pid $(cat "$file"))"; else echo "${name%%:*}: not running"; fi
    done
    if node_idle; then sinfo; return 0; fi
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
