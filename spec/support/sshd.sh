#!/bin/sh
# Throwaway SSH hosts for the specs: two sshd on 127.0.0.2 and 127.0.0.3,
# with host and user keys made in DIR, and an ssh client config DIR/ssh_config
# that reaches them without prompts.  Needs root.  Jobs log in as the system
# user par-ssh-test, whose shell is /bin/sh and whose home is DIR/home: the
# login shell of a real user may read start-up files on every command (root's
# .bashrc here ran `pyenv init`, half a second each), which only slows tests.
#   sshd.sh start DIR     start both (prints the port)
#   sshd.sh stop DIR [ADDR]  stop both, or the one on ADDR
set -eu
cmd=$1 dir=$2
USER_NAME=par-ssh-test

stop_one() {
  if [ -f "$dir/sshd-$1.pid" ]; then
    kill "$(cat "$dir/sshd-$1.pid")" 2>/dev/null || true
    rm -f "$dir/sshd-$1.pid"
  fi
}

case $cmd in
start)
  SSHD=$(command -v sshd || echo /usr/sbin/sshd)
  [ -x "$SSHD" ] || { echo "sshd.sh: sshd not found: apt-get install openssh-server" >&2; exit 1; }
  mkdir -p "$dir/home" /run/sshd
  chmod 711 "$dir"
  if id "$USER_NAME" >/dev/null 2>&1; then
    usermod -p '*' -d "$dir/home" "$USER_NAME"
  else
    # password '*': no password login, yet not locked (sshd refuses locked accounts)
    useradd --system --no-create-home --shell /bin/sh --home-dir "$dir/home" -p '*' "$USER_NAME"
  fi
  chown "$USER_NAME" "$dir/home"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
  cp "$dir/user_key.pub" "$dir/authorized_keys"
  port=$(( 20000 + $$ % 20000 ))
  for try in 1 2 3 4 5 6 7 8 9 10; do
    ok=1
    for addr in 127.0.0.2 127.0.0.3; do
      cat > "$dir/sshd-$addr.conf" <<CONF
ListenAddress $addr:$port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd-$addr.pid
AllowUsers $USER_NAME
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
CONF
      "$SSHD" -f "$dir/sshd-$addr.conf" -E "$dir/sshd-$addr.log" || ok=0
    done
    if [ $ok = 1 ]; then break; fi
    stop_one 127.0.0.2; stop_one 127.0.0.3
    port=$((port + 1))
  done
  [ $ok = 1 ] || { echo "sshd.sh: no free port" >&2; exit 1; }
  cat > "$dir/ssh_config" <<CONF
Host *
  Port $port
  User $USER_NAME
  IdentityFile $dir/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  ConnectTimeout 5
CONF
  echo "$port"
  ;;
stop)
  if [ $# -ge 3 ]; then stop_one "$3"; else
    stop_one 127.0.0.2; stop_one 127.0.0.3
    # remote jobs a timeout left running (a /proc loop: procps hangs under ASan)
    uid=$(id -u "$USER_NAME" 2>/dev/null || echo none)
    for p in /proc/[0-9]*; do
      [ "$(stat -c %u "$p" 2>/dev/null)" = "$uid" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    sleep 0.1
    userdel "$USER_NAME" 2>/dev/null || true
  fi
  ;;
*)
  echo "usage: sshd.sh start|stop DIR [ADDR]" >&2; exit 2
  ;;
esac
