# Shared by demo.sh and test.sh: install what the appliance needs from Debian's packages.

# Installs the Debian packages named, if any is missing. Needs root (or sudo).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root to install: ${missing[*]} (apt-get install ${missing[*]})" >&2; return 1; }
    sudo="sudo"
  fi
  echo "==> installing ${missing[*]} with apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Builds every binary of the workspace once, into the one shared target directory.
build_all() {
  echo "==> building the workspace"
  cargo build --workspace --bins --quiet
}
