// Families whose implementation has not landed yet register nothing. Each family's
// own file replaces its line here.
namespace vtl::models {
void register_vgg() {}
void register_mobilenet_v1() {}
void register_mobilenet_v2() {}
void register_mobilenet_v3() {}
void register_efficientnet() {}
}  // namespace vtl::models
