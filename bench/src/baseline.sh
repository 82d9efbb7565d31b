#!/usr/bin/env bash
# bench/pipeline's baseline: the main job done by plain tools (tar, sha256sum, cp, tar -x, rm), stage
# after stage, each stage running PAR items at once (xargs -P). The same verification as the worker's
# operations (DESIGN §4): every written file is checked against the checksum recorded when it was
# made, unpacked trees against the raw files' recorded checksums, and a copy is deleted only after its
# archived packages hash right. Ends with `times`: the CPU of this shell and of all it waited for.
#
# usage: baseline.sh DIR PAR
#   DIR/src/<package>/<file>             the raw files
#   DIR/manifest/<package>.files         "<sha256>  files/<package>/<file>" lines (recorded at the source)
#   DIR/bundles/<transfer package>       the raw data packages of each transfer package, one a line
set -euo pipefail
export DIR=$1
PAR=$2
cd "$DIR"
mkdir -p sums cha-buffer/raw cha-buffer/transfer col-buffer/transfer col-buffer/unpacked col-lta/archive

# package: tar the raw files into the source buffer, recording the tar's sha256 as it is written.
package() {
  local p=$1
  (cd src && tar -cf - "$p") | tee "cha-buffer/raw/$p.tar.part" | sha256sum | cut -d' ' -f1 > "sums/$p"
  mv "cha-buffer/raw/$p.tar.part" "cha-buffer/raw/$p.tar"
}
# bundle: tar the packages of a transfer package, recording its sha256.
bundle() {
  local t=$1 members=()
  while read -r p; do members+=("raw/$p.tar"); done < "bundles/$t"
  (cd cha-buffer && tar -cf - "${members[@]}") | tee "cha-buffer/transfer/$t.tar.part" | sha256sum | cut -d' ' -f1 > "sums/$t"
  mv "cha-buffer/transfer/$t.tar.part" "cha-buffer/transfer/$t.tar"
}
# transfer: copy to the other site's buffer and verify what arrived.
transfer() {
  local t=$1 dst="col-buffer/transfer/$1.tar"
  cp "cha-buffer/transfer/$t.tar" "$dst.part"
  echo "$(cat "sums/$t")  $dst.part" | sha256sum -c --quiet
  mv "$dst.part" "$dst"
}
# unpack: verify the archive, extract it and every package in it, verify every package and raw file.
unpack() {
  local t=$1 archive="col-buffer/transfer/$1.tar" dir="col-buffer/unpacked/$1"
  echo "$(cat "sums/$t")  $archive" | sha256sum -c --quiet
  mkdir -p "$dir.part/files"
  tar -xf "$archive" -C "$dir.part"
  while read -r p; do tar -xf "$dir.part/raw/$p.tar" -C "$dir.part/files"; done < "bundles/$t"
  while read -r p; do
    echo "$(cat "sums/$p")  raw/$p.tar"
    cat "manifest/$p.files"
  done < "bundles/$t" | (cd "$dir.part" && sha256sum -c --quiet)
  mv "$dir.part" "$dir"
}
# archive: copy each package to the long-term archive and verify the copy.
archive() {
  local t=$1 p dst
  while read -r p; do
    dst="col-lta/archive/$p.tar"
    cp "col-buffer/unpacked/$t/raw/$p.tar" "$dst.part"
    echo "$(cat "sums/$p")  $dst.part" | sha256sum -c --quiet
    mv "$dst.part" "$dst"
  done < "bundles/$t"
}
# delete: each source copy (the raw files, the package at the buffer) once its archive hashes right,
# then the transfer package once all its packages' archives do.
delete() {
  local t=$1 p
  while read -r p; do
    echo "$(cat "sums/$p")  col-lta/archive/$p.tar" | sha256sum -c --quiet
    rm -r "src/$p"
    echo "$(cat "sums/$p")  col-lta/archive/$p.tar" | sha256sum -c --quiet
    rm "cha-buffer/raw/$p.tar"
  done < "bundles/$t"
  while read -r p; do echo "$(cat "sums/$p")  col-lta/archive/$p.tar"; done < "bundles/$t" | sha256sum -c --quiet
  rm "cha-buffer/transfer/$t.tar"
}
export -f package bundle transfer unpack archive delete

ls src | xargs -P "$PAR" -I{} bash -c 'package "$1"' _ {}
for stage in bundle transfer unpack archive delete; do
  ls bundles | xargs -P "$PAR" -I{} bash -c "$stage \"\$1\"" _ {}
done
times
