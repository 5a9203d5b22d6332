# SPDX-License-Identifier: Apache-2.0
# cmake -DIN=<file> -DOUT=<file.cc> -DNAME=<symbol> -P embed_file.cmake
# Writes the bytes of IN as `const unsigned char fg::api::NAME[]` and NAME##Size.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by embed_file.cmake. Do not edit.\n#include <cstddef>\n"
  "namespace fg::api {\nextern const unsigned char ${NAME}[];\nextern const std::size_t ${NAME}Size;\n"
  "const unsigned char ${NAME}[] = {${bytes}0x00};\nconst std::size_t ${NAME}Size = ${size};\n}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
