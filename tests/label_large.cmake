# Included by ctest after the discovered doctest cases (tests/CMakeLists.txt):
# the cases of test suite "large" (n of 600 to 1200 through every solver)
# are labelled slow as well as unit. The suite in the source is the one
# place that says which they are.
if(NOT EXISTS "${BASINVOL_TESTS_EXE}")
  return()
endif()
execute_process(COMMAND "${BASINVOL_TESTS_EXE}" --test-suite=large --list-test-cases
                OUTPUT_VARIABLE listing RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  return()
endif()
string(REPLACE "\n" ";" lines "${listing}")
foreach(line IN LISTS lines)
  if(line STREQUAL "" OR line MATCHES "^\\[doctest\\]" OR line MATCHES "^=+$")
    continue()
  endif()
  set_tests_properties("${line}" PROPERTIES LABELS "unit;slow" COST 30)
endforeach()
