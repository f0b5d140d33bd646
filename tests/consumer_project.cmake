# Installs vtl into a prefix inside the build tree, then configures, builds and runs the
# examples/ project against that installation, as another CMake project would.
# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -P consumer_project.cmake
set(prefix ${BUILD_DIR}/consumer/install)
set(consumer_build ${BUILD_DIR}/consumer/build)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
# What is installed names no folder of this build: a program linking vtl compiles and
# runs the same once the source tree is gone.
file(GLOB exported ${prefix}/lib*/cmake/vtl/*.cmake)
foreach(file IN LISTS exported)
  file(READ ${file} text)
  string(FIND "${text}" "${SOURCE_DIR}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${file} names the source tree ${SOURCE_DIR}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${consumer_build} -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${consumer_build} --target example_load_backbone)
run(${consumer_build}/load_backbone)
if(NOT last_output MATCHES "2048 features")
  message(FATAL_ERROR "unexpected output of load_backbone: ${last_output}")
endif()
message(STATUS "consumer project built against the installed vtl: ${last_output}")
