# Strict warnings for eagain's own targets (never for third-party headers,
# which come in as system includes).
#
# -Wconversion catches silent narrowing of lengths and offsets, the classic
# framing bug. -Wsign-conversion is left out: with std::span and size_t
# indexing it flags mostly correct code and buries the real findings. gcc's
# -Wnull-dereference is left out too: at -O2 it reports paths inside
# std::vector that cannot happen.
function(eagain_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual
    -Wimplicit-fallthrough -Wswitch-enum)
  if(EAGAIN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
