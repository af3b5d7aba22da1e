#!/bin/sh
# firecore boot script: start the app on a netbooted piCore and keep it running.
#
# Started as root from /opt/bootlocal.sh (the line `/opt/firecore/boot.sh &` that the remaster
# step appends; bootlocal.sh keeps its original lines). It
#   1. loads /opt/firecore/app.env, then /opt/firecore/profile.env (the per-device profile wins),
#   2. waits (bounded: FIRECORE_NET_WAIT s) for an IPv4 address — piCore starts udhcpc in the
#      background, so the network may not be up yet when bootlocal.sh runs,
#   3. sets the hostname (FIRECORE_HOSTNAME) and logs what it really is afterwards: piCore's
#      sethostname ignores its argument when host= is on the kernel command line (Core-scripts
#      picore usr/bin/sethostname), so it is used only when host= agrees or is absent; and
#      records the netboot state (OTP, bootloader config) as root in the background,
#   4. starts the app as user tc (FIRECORE_USER) with PYTHONPATH pointing at the overlay's
#      site-packages, and the mDNS announcer beside it,
#   5. restarts either if it exits, with a bounded exponential backoff (FIRECORE_BACKOFF_MS
#      doubling up to FIRECORE_BACKOFF_MAX_MS; reset after FIRECORE_STABLE_SECS of running),
#   6. logs every step to $FIRECORE_LOG_DIR/boot.log and keeps every log size-bounded (RAM).
# SIGTERM stops the app and the announcer, then the script. POSIX sh: runs under busybox ash.
# Every path and tunable is an environment variable, so tests run it with stand-ins.

FIRECORE_DIR=${FIRECORE_DIR:-/opt/firecore}
for _env in "$FIRECORE_DIR/app.env" "$FIRECORE_DIR/profile.env"; do
    if [ -r "$_env" ]; then
        set -a
        . "$_env"
        set +a
    fi
done

: "${FIRECORE_APP_MODE:=bundled}"         # bundled | module | run
: "${FIRECORE_APP_DIR:=$FIRECORE_DIR/app}"
: "${FIRECORE_BUILD_FILE:=$FIRECORE_DIR/build.json}"
: "${FIRECORE_PYTHON:=python3}"
: "${FIRECORE_USER:=tc}"
: "${FIRECORE_LOG_DIR:=/var/log/firecore}"
: "${FIRECORE_RUN_DIR:=/var/run/firecore}"
: "${FIRECORE_IFACE:=}"                   # empty: any interface but lo
: "${FIRECORE_NET_WAIT:=60}"
: "${FIRECORE_POLL:=1}"
: "${FIRECORE_BACKOFF_MS:=1000}"
: "${FIRECORE_BACKOFF_MAX_MS:=60000}"
: "${FIRECORE_STABLE_SECS:=60}"
: "${FIRECORE_MDNS:=1}"
: "${FIRECORE_LOG_MAX_BYTES:=262144}"
: "${FIRECORE_ROTATE_SECS:=30}"
: "${FIRECORE_PROC:=/proc}"
BOOT_LOG=$FIRECORE_LOG_DIR/boot.log
PYTHONPATH="$FIRECORE_APP_DIR:$FIRECORE_DIR/agent:$FIRECORE_DIR/site-packages${PYTHONPATH:+:$PYTHONPATH}"
PYTHONUNBUFFERED=1
FIRECORE_NETBOOT_FILE=$FIRECORE_RUN_DIR/netboot.json
export FIRECORE_DIR FIRECORE_APP_MODE FIRECORE_APP_DIR FIRECORE_BUILD_FILE FIRECORE_LOG_DIR \
    FIRECORE_LOG_MAX_BYTES FIRECORE_NETBOOT_FILE PYTHONPATH PYTHONUNBUFFERED

log() {
    printf '%s boot[%s]: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$$" "$*" >>"$BOOT_LOG" 2>/dev/null
}

# Copy-truncate a log past FIRECORE_LOG_MAX_BYTES (writers append, so truncating is safe).
rotate() {
    [ -f "$1" ] || return 0
    _size=$(wc -c <"$1" 2>/dev/null) || return 0
    if [ "${_size:-0}" -gt "$FIRECORE_LOG_MAX_BYTES" ]; then
        cp "$1" "$1.1" 2>/dev/null && : >"$1"
    fi
}

# Sleep in the background and wait for it, so a trapped SIGTERM interrupts the nap at once.
nap() {
    sleep "$1" &
    _napper=$!
    wait "$_napper" 2>/dev/null
    _napper=
}

# Milliseconds as a sleep(1) argument ("2", "0.250").
secs() {
    if [ $(($1 % 1000)) -eq 0 ]; then
        echo $(($1 / 1000))
    else
        printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000))
    fi
}

# The first IPv4 address (of FIRECORE_IFACE, else of any interface but lo); empty if none.
ipv4_address() {
    _addr=$(ip -4 -o addr show ${FIRECORE_IFACE:+dev "$FIRECORE_IFACE"} 2>/dev/null |
        awk '$2 != "lo" { for (i = 1; i < NF; i++) if ($i == "inet") {
            split($(i + 1), a, "/"); if (a[1] !~ /^127\./) { print a[1]; exit } } }')
    if [ -z "$_addr" ]; then
        _addr=$(ifconfig ${FIRECORE_IFACE:+"$FIRECORE_IFACE"} 2>/dev/null |
            awk '/inet addr:/ { sub("addr:", "", $2); if ($2 !~ /^127\./) { print $2; exit } }')
    fi
    echo "$_addr"
}

wait_for_ipv4() {
    _deadline=$(($(date +%s) + FIRECORE_NET_WAIT))
    log "waiting up to ${FIRECORE_NET_WAIT}s for an IPv4 address${FIRECORE_IFACE:+ on $FIRECORE_IFACE}"
    while :; do
        _ip=$(ipv4_address)
        if [ -n "$_ip" ]; then
            log "IPv4 address: $_ip"
            return 0
        fi
        if [ "$(date +%s)" -ge "$_deadline" ]; then
            log "no IPv4 address after ${FIRECORE_NET_WAIT}s; starting the app anyway"
            return 1
        fi
        nap "$FIRECORE_POLL"
    done
}

# The value of host= on the kernel command line (the last one, as piCore's getbootparam reads).
boot_host() {
    _bh=
    for _word in $(cat "$FIRECORE_PROC/cmdline" 2>/dev/null); do
        case $_word in host=*) _bh=${_word#host=} ;; esac
    done
    echo "$_bh"
}

set_hostname() {
    if [ -z "$FIRECORE_HOSTNAME" ]; then
        log "FIRECORE_HOSTNAME is not set; keeping hostname $(hostname 2>/dev/null)"
        return 0
    fi
    _old=$(hostname 2>/dev/null)
    if [ "$_old" = "$FIRECORE_HOSTNAME" ]; then
        log "hostname is already $_old"
        return 0
    fi
    _boot=$(boot_host)
    if command -v sethostname >/dev/null 2>&1 &&
        { [ -z "$_boot" ] || [ "$_boot" = "$FIRECORE_HOSTNAME" ]; }; then
        sethostname "$FIRECORE_HOSTNAME" >/dev/null 2>&1 # piCore: /etc/hostname, /etc/hosts too
    else
        # piCore's sethostname would set host=$_boot from the kernel command line, not ours
        [ -n "$_boot" ] && log "the kernel command line says host=$_boot; using hostname"
        hostname "$FIRECORE_HOSTNAME" 2>/dev/null
    fi
    _now=$(hostname 2>/dev/null)
    if [ "$_now" = "$FIRECORE_HOSTNAME" ]; then
        log "hostname set to $_now (was $_old)"
    else
        log "could not set the hostname to $FIRECORE_HOSTNAME: it is $_now"
    fi
}

# Replace this (sub)shell by "$1" (a command line: word-split on purpose, our own paths), run as
# FIRECORE_USER when we are root and that user exists.
exec_as_user() {
    if [ "$(id -u)" = 0 ] && [ -n "$FIRECORE_USER" ] && [ "$FIRECORE_USER" != root ]; then
        case $FIRECORE_USER in
            *[!A-Za-z0-9_-]*) log "FIRECORE_USER=$FIRECORE_USER is not a user name" ;;
            *)
                if id "$FIRECORE_USER" >/dev/null 2>&1; then
                    _home=$(eval "echo ~$FIRECORE_USER")
                    exec su -p -s /bin/sh -c "HOME=$_home; export HOME; exec $1" "$FIRECORE_USER"
                fi
                log "user $FIRECORE_USER does not exist; running as root"
                ;;
        esac
    fi
    exec $1
}

# supervise NAME COMMAND CWD: run COMMAND, restart it when it exits, until SIGTERM.
supervise() {
    _name=$1
    _cmd=$2
    _out=$FIRECORE_LOG_DIR/$1.out
    _pidfile=$FIRECORE_RUN_DIR/$1.pid
    _delay=$FIRECORE_BACKOFF_MS
    _child=
    _stopping=
    trap '_stopping=1; [ -n "$_child" ] && kill "$_child" 2>/dev/null; [ -n "$_napper" ] && kill "$_napper" 2>/dev/null' TERM INT
    while [ -z "$_stopping" ]; do
        rotate "$_out"
        log "starting $_name: $_cmd (as ${FIRECORE_USER:-$(id -un)})"
        _start=$(date +%s)
        (cd "$3" && exec_as_user "$_cmd") >>"$_out" 2>&1 &
        _child=$!
        echo "$_child" >"$_pidfile"
        wait "$_child"
        _rc=$?
        if [ -n "$_stopping" ]; then
            _n=0
            while kill -0 "$_child" 2>/dev/null && [ $_n -lt 10 ]; do
                sleep 1
                _n=$((_n + 1))
            done
            kill -9 "$_child" 2>/dev/null
            wait "$_child" 2>/dev/null
            break
        fi
        _child=
        rm -f "$_pidfile"
        _ran=$(($(date +%s) - _start))
        if [ "$_ran" -ge "$FIRECORE_STABLE_SECS" ]; then
            _delay=$FIRECORE_BACKOFF_MS
        fi
        log "$_name exited with status $_rc after ${_ran}s; restarting in $(secs "$_delay")s"
        nap "$(secs "$_delay")"
        _delay=$((_delay * 2))
        if [ "$_delay" -gt "$FIRECORE_BACKOFF_MAX_MS" ]; then
            _delay=$FIRECORE_BACKOFF_MAX_MS
        fi
    done
    rm -f "$_pidfile"
    log "$_name stopped"
    exit 0
}

shutdown() {
    log "stopping (signal)"
    [ -n "$_napper" ] && kill "$_napper" 2>/dev/null
    for _pid in $_supervisors; do
        kill "$_pid" 2>/dev/null
    done
    for _pid in $_supervisors; do
        wait "$_pid" 2>/dev/null
    done
    rm -f "$FIRECORE_RUN_DIR/boot.pid"
    log "stopped"
    exit 0
}

main() {
    mkdir -p "$FIRECORE_LOG_DIR" "$FIRECORE_RUN_DIR"
    if [ "$(id -u)" = 0 ] && [ -n "$FIRECORE_USER" ] && id "$FIRECORE_USER" >/dev/null 2>&1; then
        chown "$FIRECORE_USER" "$FIRECORE_LOG_DIR" 2>/dev/null # the app writes app.log there
    fi
    rotate "$BOOT_LOG"
    log "firecore boot script starting (mode $FIRECORE_APP_MODE, dir $FIRECORE_DIR)"
    echo "$$" >"$FIRECORE_RUN_DIR/boot.pid"
    _supervisors=
    _napper=
    trap shutdown TERM INT

    # The netboot state as the Pi reports it (OTP row 17, the bootloader config): the VideoCore
    # mailbox needs root and the app runs as $FIRECORE_USER, so read it once here, beside the
    # start-up (firecore_app.netboot; the app reports $FIRECORE_NETBOOT_FILE on /info).
    (cd "$FIRECORE_DIR" && exec $FIRECORE_PYTHON -m firecore_app.netboot --write \
        "$FIRECORE_NETBOOT_FILE") >>"$BOOT_LOG" 2>&1 &

    wait_for_ipv4
    set_hostname

    case $FIRECORE_APP_MODE in
        run) _app_cmd=$FIRECORE_APP_DIR/run _cwd=$FIRECORE_APP_DIR ;;
        module) _app_cmd="$FIRECORE_PYTHON -m firecore_app" _cwd=$FIRECORE_APP_DIR ;;
        *) _app_cmd="$FIRECORE_PYTHON -m firecore_app" _cwd=$FIRECORE_DIR ;;
    esac
    supervise app "$_app_cmd" "$_cwd" &
    _supervisors=$!
    if [ "$FIRECORE_MDNS" = 1 ]; then
        supervise announce "$FIRECORE_PYTHON -m firecore_app.announce" "$FIRECORE_DIR" &
        _supervisors="$_supervisors $!"
    else
        log "mDNS announcement disabled (FIRECORE_MDNS=$FIRECORE_MDNS)"
    fi

    while :; do
        nap "$FIRECORE_ROTATE_SECS"
        rotate "$BOOT_LOG"
        rotate "$FIRECORE_LOG_DIR/app.out"
        rotate "$FIRECORE_LOG_DIR/announce.out"
    done
}

main "$@"
