# Checks the ISA object libraries (CMakeLists.txt, "Kernels with ISA variants"): an object compiled
# with AVX-512 flags must define no symbol that another object could also define. An inline function
# or a template instantiated the same way in an AVX-512 and a baseline translation unit is one weak
# symbol to the linker, which keeps either copy: the AVX-512 one would then run on CPUs without it.
# So every symbol such an object gives the linker must be its ISA's own (tinytorch::kernels::<isa>::).
#   cmake -DNM=nm -DISA=avx512 -DOBJECTS="a.o|b.o" -P isa_objects.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(checked 0)
foreach(object ${objects})
  execute_process(COMMAND ${NM} --defined-only --extern-only -C ${object} OUTPUT_VARIABLE symbols
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${object}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  foreach(line ${lines})
    if(line STREQUAL "")
      continue()
    endif()
    math(EXPR checked "${checked} + 1")
    if(line MATCHES " DW\\.ref\\.__gxx_personality_v0$")
      continue()  # the exception-handling personality's address: data, the same in every object
    endif()
    if(NOT line MATCHES "^[0-9a-f]+ [TDBR] tinytorch::kernels::${ISA}::")
      message(FATAL_ERROR "${object} exports a symbol that is not ${ISA}'s own: ${line}\n"
                          "Give it internal linkage (the kernels' anonymous namespace) or move it out of the ISA file.")
    endif()
  endforeach()
endforeach()
if(checked EQUAL 0)
  message(FATAL_ERROR "no symbol found in ${OBJECTS}: the ISA files export their kernel tables")
endif()
message(STATUS "${ISA}: ${checked} exported symbols, all tinytorch::kernels::${ISA}::")
