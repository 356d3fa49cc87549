#!/bin/bash
# The official image's first run, in short: an empty /var/lib/mysql is initialised, the root
# password, database and user are created by a server listening on its socket only, then the
# real server starts on every interface (so a TCP health check passes only once this is done).
set -euo pipefail
v() { local a="MARIADB_$1" b="MYSQL_$1"; printf '%s' "${!a:-${!b:-}}"; }
args=(--user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 --skip-name-resolve)
chown -R mysql:mysql /var/lib/mysql /run/mysqld
if [[ ! -d /var/lib/mysql/mysql ]]; then
  echo '[entrypoint] initialising /var/lib/mysql'
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null
  mariadbd --user=mysql --datadir=/var/lib/mysql --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  for _ in $(seq 60); do mariadb-admin --socket=/run/mysqld/init.sock ping --silent 2>/dev/null && break; sleep 1; done
  db=$(v DATABASE) user=$(v USER) pass=$(v PASSWORD) root=$(v ROOT_PASSWORD)
  {
    echo "DELETE FROM mysql.user WHERE user = '';"
    [[ -n $root ]] && echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root'; CREATE USER 'root'@'%' IDENTIFIED BY '$root'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    [[ -n $db ]] && echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
    if [[ -n $user ]]; then
      echo "CREATE USER '$user'@'%' IDENTIFIED BY '$pass';"
      [[ -n $db ]] && echo "GRANT ALL ON \`$db\`.* TO '$user'@'%';"
    fi
    echo 'FLUSH PRIVILEGES;'
  } | mariadb --socket=/run/mysqld/init.sock -uroot
  kill "$pid"
  wait "$pid" || true
  echo '[entrypoint] initialised'
fi
if [[ $1 == mariadbd || $1 == mysqld ]]; then
  shift
  exec mariadbd "${args[@]}" "$@"
fi
exec "$@"
