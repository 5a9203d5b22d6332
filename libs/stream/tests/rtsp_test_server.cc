// SPDX-License-Identifier: Apache-2.0
// Test helper: an RTSP server on 127.0.0.1 serving an endless moving test pattern as H.264.
//   fg_rtsp_test_server PORT [MOUNT=/test] [WIDTHxHEIGHT=320x240] [FPS=15]
// Clients may use TCP or UDP transport. Prints "ready rtsp://127.0.0.1:PORT/MOUNT" when
// listening. Stopped by SIGTERM/SIGINT, or killed by tests with SIGKILL.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

namespace {

GMainLoop* g_loop = nullptr;

gboolean OnSignal(gpointer) {
    g_main_loop_quit(g_loop);
    return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char** argv) {
    gst_init(&argc, &argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PORT [MOUNT] [WIDTHxHEIGHT] [FPS]\n", argv[0]);
        return 2;
    }
    const std::string port = argv[1];
    const std::string mount = argc > 2 ? argv[2] : "/test";
    int width = 320;
    int height = 240;
    if (argc > 3 && std::sscanf(argv[3], "%dx%d", &width, &height) != 2) {
        std::fprintf(stderr, "bad size '%s'\n", argv[3]);
        return 2;
    }
    const int fps = argc > 4 ? std::atoi(argv[4]) : 15;

    g_loop = g_main_loop_new(nullptr, FALSE);
    GstRTSPServer* server = gst_rtsp_server_new();
    gst_rtsp_server_set_address(server, "127.0.0.1");
    gst_rtsp_server_set_service(server, port.c_str());

    // is-live paces the pattern in real time like a camera; a key frame every second and SPS/PPS
    // with each one let a client that (re)connects decode within a second.
    const std::string launch =
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=" + std::to_string(width) +
        ",height=" + std::to_string(height) + ",framerate=" + std::to_string(fps) +
        "/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=" + std::to_string(fps) +
        " ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, launch.c_str());
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    gst_rtsp_media_factory_set_protocols(
        factory,
        static_cast<GstRTSPLowerTrans>(GST_RTSP_LOWER_TRANS_TCP | GST_RTSP_LOWER_TRANS_UDP));
    GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
    gst_rtsp_mount_points_add_factory(mounts, mount.c_str(), factory);
    g_object_unref(mounts);

    if (gst_rtsp_server_attach(server, nullptr) == 0) {
        std::fprintf(stderr, "cannot listen on 127.0.0.1:%s\n", port.c_str());
        return 1;
    }
    g_unix_signal_add(SIGTERM, OnSignal, nullptr);
    g_unix_signal_add(SIGINT, OnSignal, nullptr);
    std::printf("ready rtsp://127.0.0.1:%s%s\n", port.c_str(), mount.c_str());
    std::fflush(stdout);
    g_main_loop_run(g_loop);
    g_object_unref(server);
    g_main_loop_unref(g_loop);
    return 0;
}
