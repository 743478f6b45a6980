/*
 * Video and audio with FFmpeg's libraries. Every output may become public,
 * so the rules are the image path's: the type comes from the content, the
 * limits are checked from the headers before any work, and nothing of the
 * source's metadata is written.
 *
 *  - open: only the demuxer of the sniffed type (the container must agree
 *    with libmagic), only local files, a decoder allow-list, bounded probe
 *    size and analyze duration, an interrupt callback with a deadline;
 *  - validate (Mastodon 4.x): pixels, frame rate, frame count, a decodable
 *    stream;
 *  - write: video -> MP4 (H.264 yuv420p even-sized + AAC, +faststart); a
 *    stream that already is that is copied (remux), any other is re-encoded
 *    (libx264 veryfast at Mastodon's bitrate, AAC 192k); audio -> MP3
 *    (copied when it is MP3, else libmp3lame VBR quality 2). One pass over
 *    the input whatever the mix;
 *  - metadata: the output's dictionaries are never filled (the
 *    `-map_metadata -1` of Mastodon's ffmpeg call), the muxers run in
 *    bitexact mode (no encoder string, no creation time), no chapters, no
 *    attached pictures, no data or subtitle tracks; only the display
 *    rotation is carried over, so a phone video stays upright;
 *  - poster: the first decoded frame, written as a PNG and handed to the
 *    image path (media.c), which makes the `small` JPEG and the blurhash.
 *
 * Built as the module r2bridge-av.so (media_int.h), opened by media.c on
 * the first video, audio file or animated GIF, so that FFmpeg is never
 * mapped into a process that handles only images.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/time.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "media_int.h"

#define PROBE_BYTES (5 * 1024 * 1024)    /* how much the demuxer may read to find streams */
#define ANALYZE_US (10LL * AV_TIME_BASE) /* and how much media time it may look at */
#define MAX_STREAMS 64                   /* a file with more is not a phone's video */
#define AAC_BITRATE 192000               /* Mastodon: -c:a aac -b:a 192k */
#define MP3_VBR_QUALITY 2                /* Mastodon: -q:a 2 */
#define X264_PRESET "veryfast"           /* Mastodon: -preset veryfast */
#define MIN_VIDEO_BITRATE 100000         /* floor for Mastodon's formula on very long files */

/* Decoders allowed to see uploads (the codecs phones, browsers and Mastodon produce). */
static const enum AVCodecID video_codecs[] = {
    AV_CODEC_ID_H264, AV_CODEC_ID_HEVC,  AV_CODEC_ID_VP8,    AV_CODEC_ID_VP9,
    AV_CODEC_ID_AV1,  AV_CODEC_ID_MPEG4, AV_CODEC_ID_THEORA, AV_CODEC_ID_PRORES,
};
static const enum AVCodecID audio_codecs[] = {
    AV_CODEC_ID_AAC,       AV_CODEC_ID_MP3,       AV_CODEC_ID_OPUS,      AV_CODEC_ID_VORBIS,
    AV_CODEC_ID_FLAC,      AV_CODEC_ID_ALAC,      AV_CODEC_ID_PCM_S16LE, AV_CODEC_ID_PCM_S24LE,
    AV_CODEC_ID_PCM_S32LE, AV_CODEC_ID_PCM_F32LE, AV_CODEC_ID_PCM_F64LE, AV_CODEC_ID_PCM_U8,
    AV_CODEC_ID_PCM_S16BE, AV_CODEC_ID_PCM_S24BE, AV_CODEC_ID_PCM_MULAW, AV_CODEC_ID_PCM_ALAW,
};

/* media.c's side of the module (media_int.h), set once by r2b_av_module_open() */
static const struct r2b_av_host *host;

struct av_job {
    const struct r2b_media_options *o;
    struct r2b_media_result *r;
    struct r2b_error *err;
    const char *dir;
    int64_t deadline_us;

    AVFormatContext *in, *out;
    AVPacket *pkt, *opkt;
    AVFrame *frame;
    int vi, ai;         /* input stream indexes, -1 when absent */
    int ovi, oai;       /* output stream indexes */
    int copy_v, copy_a; /* remux that stream */
    AVCodecContext *vdec, *adec, *venc, *aenc;
    int poster_done;
    int rotation;

    struct SwsContext *sws; /* to the encoder's format and size */
    AVFrame *vconv;
    int64_t last_vpts;
    int64_t last_vdur; /* duration of the last frame sent to the encoder (its time base) */

    SwrContext *swr;
    AVAudioFifo *fifo;
    AVFrame *aconv, *aframe;
    int64_t next_apts;
    int apts_set;
    int swr_rate, swr_fmt;
    AVChannelLayout swr_layout;

    int64_t frames;            /* video frames seen */
    double in_end;             /* seconds: the end of the last packet read */
    double out_start, out_end; /* output time span in seconds, for duration and bitrate */
    int no_span;               /* packets of the audio encoder: its span is its samples */
};

/* --- errors ------------------------------------------------------------------------------ */

static enum r2b_status job_reject(struct av_job *j, enum r2b_media_reject why, const char *fmt, ...)
    R2B_PRINTF(3, 4);

static enum r2b_status job_reject(struct av_job *j, enum r2b_media_reject why, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return host->reject(j->r, why, j->err, msg);
}

static const char *averr(int e, char *buf, size_t n)
{
    if (av_strerror(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
}

/* A failure while reading or decoding the upload: the file's fault (or the deadline's). */
static enum r2b_status input_failed(struct av_job *j, const char *what, int e)
{
    char b[128];

    if (e == AVERROR_EXIT || av_gettime_relative() > j->deadline_us)
        return job_reject(j, R2B_REJECT_TIMEOUT, "%s processing passed the %llu ms deadline",
                          j->r->type, (unsigned long long)j->o->video_timeout_ms);
    if (e == AVERROR(ENOMEM))
        return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory %s", what);
    return job_reject(j, R2B_REJECT_CORRUPT, "%s is corrupt or truncated: %s: %s", j->r->type, what,
                      averr(e, b, sizeof(b)));
}

/* A failure while encoding or writing: ours (disk, memory), not the file's. */
static enum r2b_status output_failed(struct av_job *j, const char *what, int e)
{
    char b[128];

    if (e == AVERROR_EXIT || av_gettime_relative() > j->deadline_us)
        return input_failed(j, what, AVERROR_EXIT);
    if (e == AVERROR(ENOMEM))
        return r2b_error_set(j->err, R2B_ERR_NOMEM, "cannot %s: out of memory", what);
    if (e < 0 && e > -4096) /* AVERROR(errno): a full disk is retryable (exit 75) */
        return r2b_error_set_errno(j->err, R2B_ERR_IO, AVUNERROR(e), "cannot %s", what);
    return r2b_error_set(j->err, R2B_ERR_IO, "cannot %s: %s", what, averr(e, b, sizeof(b)));
}

static int interrupt_cb(void *opaque)
{
    const struct av_job *j = opaque;

    return av_gettime_relative() >= j->deadline_us;
}

/* --- opening and validating ---------------------------------------------------------------- */

/* The demuxer that the sniffed type calls for: the container must agree with libmagic. */
static const char *demuxer_for(const char *type)
{
    static const struct {
        const char *type, *demuxer;
    } map[] = {
        {"video/mp4", "mov"},   {"video/quicktime", "mov"}, {"audio/mp4", "mov"},
        {"audio/3gpp", "mov"},  {"video/webm", "matroska"}, {"audio/webm", "matroska"},
        {"video/ogg", "ogg"},   {"audio/ogg", "ogg"},       {"audio/mpeg", "mp3"},
        {"audio/flac", "flac"}, {"audio/wav", "wav"},       {"audio/aac", "aac"},
        {"image/gif", "gif"}, /* gifv */
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].demuxer;
    return NULL;
}

static int allowed(enum AVCodecID id, const enum AVCodecID *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == id)
            return 1;
    return 0;
}

/* "h264,hevc,...": the names of every decoder of the allowed codecs, for FFmpeg's own check. */
static char *decoder_whitelist(void)
{
    struct r2b_buf b;
    const AVCodec *c;
    void *it = NULL;

    r2b_buf_init(&b, 8192);
    while ((c = av_codec_iterate(&it)) != NULL) {
        if (!av_codec_is_decoder(c))
            continue;
        if (!allowed(c->id, video_codecs, sizeof(video_codecs) / sizeof(video_codecs[0])) &&
            !allowed(c->id, audio_codecs, sizeof(audio_codecs) / sizeof(audio_codecs[0])) &&
            c->id != AV_CODEC_ID_GIF)
            continue;
        if (r2b_buf_addf(&b, "%s%s", b.len ? "," : "", c->name) != R2B_OK) {
            r2b_buf_release(&b);
            return NULL;
        }
    }
    return r2b_buf_detach(&b);
}

static enum r2b_status open_input(struct av_job *j, const char *path)
{
    const AVInputFormat *fmt;
    AVDictionary *opts = NULL;
    char *wl = NULL;
    int e;
    enum r2b_status st = R2B_OK;

    fmt = av_find_input_format(demuxer_for(j->r->type));
    if (fmt == NULL)
        return r2b_error_set(j->err, R2B_ERR_UNSUPPORTED, "this FFmpeg has no demuxer for %s",
                             j->r->type);
    if ((j->in = avformat_alloc_context()) == NULL || (wl = decoder_whitelist()) == NULL) {
        st = r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    j->in->interrupt_callback.callback = interrupt_cb;
    j->in->interrupt_callback.opaque = j;
    j->in->probesize = PROBE_BYTES;
    j->in->max_analyze_duration = ANALYZE_US;
    j->in->max_streams = MAX_STREAMS;
    /* local files only: no network, no references to other files (mov drefs, playlists) */
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "format_whitelist", fmt->name, 0);
    av_dict_set(&opts, "codec_whitelist", wl, 0);
    e = avformat_open_input(&j->in, path, fmt, &opts); /* frees j->in on failure */
    if (e < 0) {
        st = input_failed(j, "cannot open the container", e);
        goto cleanup;
    }
    if ((e = avformat_find_stream_info(j->in, NULL)) < 0) {
        st = input_failed(j, "cannot read the streams", e);
        goto cleanup;
    }
cleanup:
    av_dict_free(&opts);
    free(wl);
    return st;
}

static double stream_fps(const AVStream *s, AVRational *rate)
{
    AVRational fr = s->avg_frame_rate;

    if (fr.num <= 0 || fr.den <= 0)
        fr = s->r_frame_rate;
    if (fr.num <= 0 || fr.den <= 0)
        fr = (AVRational){0, 1};
    if (rate)
        *rate = fr;
    return fr.num > 0 ? av_q2d(fr) : 0;
}

/* Clockwise degrees (0, 90, 180, 270) a player turns the stream by. */
static int stream_rotation(const AVStream *s)
{
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(s, AV_PKT_DATA_DISPLAYMATRIX, &size);
    double a;
    int d;

    if (m == NULL || size < 9 * sizeof(int32_t))
        return 0;
    a = -av_display_rotation_get((const int32_t *)(const void *)m);
    if (isnan(a))
        return 0;
    d = (int)lround(a / 90.0) * 90;
    return ((d % 360) + 360) % 360;
}

static enum r2b_status pick_and_validate(struct av_job *j)
{
    const struct r2b_media_options *o = j->o;
    struct r2b_media_result *r = j->r;
    AVStream *vs = NULL, *as = NULL;
    char vname[16] = "", aname[16] = "";

    j->vi = j->ai = -1;
    for (unsigned i = 0; i < j->in->nb_streams; i++) {
        AVStream *s = j->in->streams[i];
        enum AVMediaType t = s->codecpar->codec_type;

        s->discard = AVDISCARD_ALL; /* read only what is used */
        if (t == AVMEDIA_TYPE_VIDEO && j->vi < 0 && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
            j->vi = (int)i;
        else if (t == AVMEDIA_TYPE_AUDIO && j->ai < 0)
            j->ai = (int)i;
    }
    /* an "audio" type carrying a picture keeps it out (cover art is not uploaded) */
    if (r->kind == R2B_MEDIA_AUDIO)
        j->vi = -1;
    /* a video container with only sound is audio, as for Mastodon */
    if (r->kind == R2B_MEDIA_VIDEO && j->vi < 0 && j->ai >= 0)
        r->kind = R2B_MEDIA_AUDIO;
    if (j->vi >= 0)
        vs = j->in->streams[j->vi];
    if (j->ai >= 0)
        as = j->in->streams[j->ai];
    if (vs &&
        !allowed(vs->codecpar->codec_id, video_codecs,
                 sizeof(video_codecs) / sizeof(video_codecs[0])) &&
        !(r->gifv && vs->codecpar->codec_id == AV_CODEC_ID_GIF))
        return job_reject(j, R2B_REJECT_TYPE, "%s with %s video, which is not accepted", r->type,
                          avcodec_get_name(vs->codecpar->codec_id));
    if (as && !allowed(as->codecpar->codec_id, audio_codecs,
                       sizeof(audio_codecs) / sizeof(audio_codecs[0]))) {
        if (r->kind == R2B_MEDIA_AUDIO)
            return job_reject(j, R2B_REJECT_TYPE, "%s with %s audio, which is not accepted",
                              r->type, avcodec_get_name(as->codecpar->codec_id));
        j->ai = -1; /* a video's odd extra sound track is dropped, not a reason to refuse */
        as = NULL;
    }
    if (vs == NULL && as == NULL)
        return job_reject(j, R2B_REJECT_CORRUPT, "%s has no %s stream that can be decoded", r->type,
                          r->kind == R2B_MEDIA_VIDEO ? "video" : "audio");
    if (vs) {
        int w = vs->codecpar->width, h = vs->codecpar->height;
        AVRational fr;
        double fps = stream_fps(vs, &fr), dur = 0;
        int64_t n = vs->nb_frames;

        r2b_strlcpy(vname, avcodec_get_name(vs->codecpar->codec_id), sizeof(vname));
        if (w <= 0 || h <= 0)
            return job_reject(j, R2B_REJECT_CORRUPT, "%s has a video stream with no size", r->type);
        r->source_width = w;
        r->source_height = h;
        if ((uint64_t)w * (uint64_t)h > o->video_max_pixels)
            return job_reject(j, R2B_REJECT_DIMENSIONS,
                              "%s of %dx%d is %llu pixels, more than the %llu allowed", r->type, w,
                              h, (unsigned long long)((uint64_t)w * (uint64_t)h),
                              (unsigned long long)o->video_max_pixels);
        if (floor(fps) > o->video_max_fps)
            return job_reject(j, R2B_REJECT_FRAME_RATE,
                              "%s at %.2f frames per second, more than the %d allowed", r->type,
                              fps, o->video_max_fps);
        if (j->in->duration > 0)
            dur = (double)j->in->duration / AV_TIME_BASE;
        else if (vs->duration > 0)
            dur = (double)vs->duration * av_q2d(vs->time_base);
        if (n <= 0 && dur > 0 && fps > 0)
            n = (int64_t)floor(dur * fps + 0.5);
        if (n > o->video_max_frames)
            return job_reject(j, R2B_REJECT_TOO_LONG,
                              "%s of %lld frames, more than the %lld allowed", r->type,
                              (long long)n, (long long)o->video_max_frames);
        snprintf(r->frame_rate, sizeof(r->frame_rate), "%d/%d", fr.num, fr.den);
        r->fps = fps;
        j->rotation = stream_rotation(vs);
        r->rotation = j->rotation;
        vs->discard = AVDISCARD_DEFAULT;
    }
    if (as) {
        r2b_strlcpy(aname, avcodec_get_name(as->codecpar->codec_id), sizeof(aname));
        as->discard = AVDISCARD_DEFAULT;
    }
    snprintf(r->source_codecs, sizeof(r->source_codecs), "%s%s%s", vname,
             vname[0] && aname[0] ? "+" : "", aname);
    return R2B_OK;
}

/* --- output ---------------------------------------------------------------------------------- */

static enum r2b_status open_decoder(struct av_job *j, int idx, AVCodecContext **out, int one_thread)
{
    AVStream *s = j->in->streams[idx];
    const AVCodec *c = avcodec_find_decoder(s->codecpar->codec_id);
    AVDictionary *opts = NULL;
    char *wl = decoder_whitelist();
    int e;

    if (c == NULL || wl == NULL) {
        free(wl);
        return c == NULL ? job_reject(j, R2B_REJECT_TYPE, "no decoder for %s",
                                      avcodec_get_name(s->codecpar->codec_id))
                         : r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
    }
    if ((*out = avcodec_alloc_context3(c)) == NULL) {
        free(wl);
        return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
    }
    if ((e = avcodec_parameters_to_context(*out, s->codecpar)) < 0) {
        free(wl);
        return output_failed(j, "set up a decoder", e);
    }
    (*out)->pkt_timebase = s->time_base;
    /* as many threads as the machine has, except for a decoder that only makes the poster
     * (remux): frame threads would delay the first frame and cost their start-up */
    (*out)->thread_count = one_thread ? 1 : 0;
    av_dict_set(&opts, "codec_whitelist", wl, 0);
    e = avcodec_open2(*out, c, &opts);
    av_dict_free(&opts);
    free(wl);
    if (e < 0)
        return input_failed(j, "cannot open the decoder", e);
    return R2B_OK;
}

/* Copies the display matrix (the only side data kept) so players keep the video upright. */
static void keep_rotation(const AVStream *in, AVStream *out)
{
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(in, AV_PKT_DATA_DISPLAYMATRIX, &size);
    uint8_t *d;

    if (m && size == 9 * sizeof(int32_t) &&
        (d = av_stream_new_side_data(out, AV_PKT_DATA_DISPLAYMATRIX, size)) != NULL)
        memcpy(d, m, size);
}

/* Mastodon: min(w * h * 30 * 0.11, 99 MiB * 8 / duration - 192k) bits per second. */
static int64_t mastodon_bitrate(int w, int h, double duration_s)
{
    double b = (double)w * (double)h * 30 * 0.11;

    if (duration_s > 0) {
        double cap = (double)R2B_MEDIA_VIDEO_MAX_BYTES * 8 / duration_s - AAC_BITRATE;

        if (cap < b)
            b = cap;
    }
    return b < MIN_VIDEO_BITRATE ? MIN_VIDEO_BITRATE : (int64_t)b;
}

static enum r2b_status add_video(struct av_job *j)
{
    AVStream *is = j->in->streams[j->vi], *os;
    const AVCodecParameters *p = is->codecpar;
    int e;

    j->copy_v = p->codec_id == AV_CODEC_ID_H264 &&
                (p->format == AV_PIX_FMT_YUV420P || p->format == AV_PIX_FMT_YUVJ420P) &&
                p->width % 2 == 0 && p->height % 2 == 0;
    if ((os = avformat_new_stream(j->out, NULL)) == NULL)
        return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
    j->ovi = os->index;
    if (j->copy_v) {
        if ((e = avcodec_parameters_copy(os->codecpar, p)) < 0)
            return output_failed(j, "copy the video parameters", e);
        os->codecpar->codec_tag = 0; /* the mp4 muxer picks its own */
        os->time_base = is->time_base;
    } else {
        const AVCodec *c = avcodec_find_encoder_by_name("libx264");
        AVCodecContext *x;
        AVDictionary *opts = NULL;
        double dur = j->in->duration > 0 ? (double)j->in->duration / AV_TIME_BASE : 0;
        AVRational fr;

        if (c == NULL)
            return r2b_error_set(j->err, R2B_ERR_UNSUPPORTED, "this FFmpeg has no libx264 encoder");
        if ((j->venc = x = avcodec_alloc_context3(c)) == NULL)
            return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        stream_fps(is, &fr);
        /* H.264 wants even sizes: crop the odd column/row, as Mastodon does */
        x->width = p->width & ~1;
        x->height = p->height & ~1;
        if (x->width == 0 || x->height == 0)
            return job_reject(j, R2B_REJECT_CORRUPT, "%s of %dx%d is too small to encode",
                              j->r->type, p->width, p->height);
        x->pix_fmt = AV_PIX_FMT_YUV420P;
        x->color_range = AVCOL_RANGE_MPEG;
        x->sample_aspect_ratio = p->sample_aspect_ratio;
        x->time_base = is->time_base;
        if (fr.num > 0)
            x->framerate = fr;
        x->bit_rate = mastodon_bitrate(x->width, x->height, dur);
        x->thread_count = 0;
        if (j->out->oformat->flags & AVFMT_GLOBALHEADER)
            x->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        av_dict_set(&opts, "preset", X264_PRESET, 0);
        e = avcodec_open2(x, c, &opts);
        av_dict_free(&opts);
        if (e < 0)
            return output_failed(j, "open the H.264 encoder", e);
        if ((e = avcodec_parameters_from_context(os->codecpar, x)) < 0)
            return output_failed(j, "set up the video stream", e);
        os->time_base = x->time_base;
        j->last_vpts = AV_NOPTS_VALUE;
    }
    if (is->avg_frame_rate.num > 0)
        os->avg_frame_rate = is->avg_frame_rate;
    keep_rotation(is, os);
    /* the poster (and, when transcoding, every frame) needs the decoder */
    return open_decoder(j, j->vi, &j->vdec, j->copy_v);
}

static int supported_rate(const AVCodec *c, int rate)
{
    if (c->supported_samplerates == NULL)
        return rate;
    for (const int *p = c->supported_samplerates; *p; p++)
        if (*p == rate)
            return rate;
    return 0;
}

static enum r2b_status add_audio(struct av_job *j, int mp3_out)
{
    AVStream *is = j->in->streams[j->ai], *os;
    const AVCodecParameters *p = is->codecpar;
    int e;

    j->copy_a = mp3_out ? p->codec_id == AV_CODEC_ID_MP3 : p->codec_id == AV_CODEC_ID_AAC;
    if ((os = avformat_new_stream(j->out, NULL)) == NULL)
        return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
    j->oai = os->index;
    if (j->copy_a) {
        if ((e = avcodec_parameters_copy(os->codecpar, p)) < 0)
            return output_failed(j, "copy the audio parameters", e);
        os->codecpar->codec_tag = 0;
        os->time_base = is->time_base;
        return R2B_OK;
    }
    {
        enum r2b_status st = open_decoder(j, j->ai, &j->adec, 0);
        const AVCodec *c = mp3_out ? avcodec_find_encoder_by_name("libmp3lame")
                                   : avcodec_find_encoder(AV_CODEC_ID_AAC);
        AVCodecContext *a;
        int rate;

        if (st != R2B_OK)
            return st;
        if (c == NULL)
            return r2b_error_set(j->err, R2B_ERR_UNSUPPORTED, "this FFmpeg has no %s encoder",
                                 mp3_out ? "libmp3lame" : "AAC");
        if ((j->aenc = a = avcodec_alloc_context3(c)) == NULL)
            return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        rate = supported_rate(c, j->adec->sample_rate);
        a->sample_rate = rate ? rate : mp3_out ? 44100 : 48000;
        av_channel_layout_default(&a->ch_layout, j->adec->ch_layout.nb_channels >= 2 ? 2 : 1);
        a->sample_fmt = c->sample_fmts ? c->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
        for (const enum AVSampleFormat *f = c->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE; f++)
            if (*f == AV_SAMPLE_FMT_FLTP)
                a->sample_fmt = *f;
        a->time_base = (AVRational){1, a->sample_rate};
        if (mp3_out) { /* VBR, quality 2 */
            a->flags |= AV_CODEC_FLAG_QSCALE;
            a->global_quality = MP3_VBR_QUALITY * FF_QP2LAMBDA;
        } else {
            a->bit_rate = AAC_BITRATE;
        }
        if (j->out->oformat->flags & AVFMT_GLOBALHEADER)
            a->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        if ((e = avcodec_open2(a, c, NULL)) < 0)
            return output_failed(j, "open the audio encoder", e);
        if ((e = avcodec_parameters_from_context(os->codecpar, a)) < 0)
            return output_failed(j, "set up the audio stream", e);
        os->time_base = a->time_base;
        j->fifo = av_audio_fifo_alloc(a->sample_fmt, a->ch_layout.nb_channels,
                                      a->frame_size > 0 ? a->frame_size * 2 : 4096);
        j->aconv = av_frame_alloc();
        j->aframe = av_frame_alloc();
        if (j->fifo == NULL || j->aconv == NULL || j->aframe == NULL)
            return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
    }
    return R2B_OK;
}

/* Writes one packet of output stream `os_index`, timestamps in `tb`. Takes the packet's data. */
static enum r2b_status write_packet(struct av_job *j, AVPacket *pkt, AVRational tb, int os_index)
{
    AVStream *os = j->out->streams[os_index];
    int e;

    pkt->stream_index = os_index;
    pkt->pos = -1;
    av_packet_rescale_ts(pkt, tb, os->time_base);
    if (pkt->pts != AV_NOPTS_VALUE && !j->no_span) {
        double s = (double)pkt->pts * av_q2d(os->time_base);
        double end =
            (double)(pkt->pts + (pkt->duration > 0 ? pkt->duration : 0)) * av_q2d(os->time_base);

        if (s < j->out_start)
            j->out_start = s;
        if (end > j->out_end)
            j->out_end = end;
    }
    if ((e = av_interleaved_write_frame(j->out, pkt)) < 0)
        return output_failed(j, "write the output", e);
    return R2B_OK;
}

static enum r2b_status drain_encoder(struct av_job *j, AVCodecContext *enc, int os_index)
{
    int e;

    while ((e = avcodec_receive_packet(enc, j->opkt)) >= 0) {
        enum r2b_status st;

        /* x264 leaves durations to the muxer, which reads them from the next
         * timestamp: the last frame would get none and the video end early */
        if (enc == j->venc && j->opkt->duration <= 0)
            j->opkt->duration = j->last_vdur;
        j->no_span = enc == j->aenc; /* encoder delay and padding are not content */
        st = write_packet(j, j->opkt, enc->time_base, os_index);
        j->no_span = 0;

        av_packet_unref(j->opkt);
        if (st != R2B_OK)
            return st;
    }
    if (e != AVERROR(EAGAIN) && e != AVERROR_EOF)
        return output_failed(j, "encode", e);
    return R2B_OK;
}

/* --- poster ------------------------------------------------------------------------------------
 */

static enum r2b_status write_poster(struct av_job *j, const AVFrame *f)
{
    const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_PNG);
    AVCodecContext *png = NULL;
    struct SwsContext *sws = NULL;
    AVFrame *rgb = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    char path[4200];
    enum r2b_status st = R2B_OK;
    /* the odd last column/row goes, as in the MP4 */
    int fd = -1, e, cw = f->width & ~1, ch = f->height & ~1, w, h, have_file = 0;
    double area;

    if (cw == 0)
        cw = f->width;
    if (ch == 0)
        ch = f->height;
    w = cw;
    h = ch;
    area = (double)w * (double)h;

    if (rgb == NULL || pkt == NULL || c == NULL) {
        st = r2b_error_set(j->err, c ? R2B_ERR_NOMEM : R2B_ERR_UNSUPPORTED,
                           c ? "out of memory" : "this FFmpeg has no PNG encoder");
        goto cleanup;
    }
    /* scale to the small style's area here: the image path then only converts and encodes */
    if (area > (double)j->o->small_max_pixels) {
        double s = sqrt(area / (double)j->o->small_max_pixels);

        w = (int)floor(w / s);
        h = (int)floor(h / s);
        if (w < 1)
            w = 1;
        if (h < 1)
            h = 1;
    }
    rgb->format = AV_PIX_FMT_RGB24;
    rgb->width = w;
    rgb->height = h;
    sws = sws_getContext(cw, ch, f->format, w, h, AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (sws == NULL || av_frame_get_buffer(rgb, 0) < 0) {
        st = r2b_error_set(j->err, R2B_ERR_NOMEM, "cannot convert the poster frame");
        goto cleanup;
    }
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, ch, rgb->data, rgb->linesize);
    if ((png = avcodec_alloc_context3(c)) == NULL) {
        st = r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    png->width = w;
    png->height = h;
    png->pix_fmt = AV_PIX_FMT_RGB24;
    png->time_base = (AVRational){1, 25};
    png->compression_level = 1; /* a temp file read once: speed over size */
    if ((e = avcodec_open2(png, c, NULL)) < 0 || (e = avcodec_send_frame(png, rgb)) < 0 ||
        (e = avcodec_receive_packet(png, pkt)) < 0) {
        st = output_failed(j, "encode the poster frame", e);
        goto cleanup;
    }
    snprintf(path, sizeof(path), "%s/poster-frame.png", j->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    have_file = fd >= 0; /* removed on every path from here, a failed write included */
    if (fd < 0 || r2b_write_all(fd, pkt->data, (size_t)pkt->size) != 0) {
        st = r2b_error_set_errno(j->err, R2B_ERR_IO, errno, "cannot write '%s'", path);
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = r2b_error_set_errno(j->err, R2B_ERR_IO, errno, "cannot write '%s'", path);
        goto cleanup;
    }
    fd = -1;
    st = host->poster(path, j->rotation, j->dir, j->o, j->r, j->err);
cleanup:
    if (fd >= 0)
        close(fd);
    if (have_file)
        unlink(path);
    avcodec_free_context(&png);
    sws_freeContext(sws);
    av_frame_free(&rgb);
    av_packet_free(&pkt);
    if (st == R2B_OK)
        j->poster_done = 1;
    return st;
}

/* --- the video path -----------------------------------------------------------------------------
 */

static enum r2b_status encode_video(struct av_job *j, AVFrame *f)
{
    AVCodecContext *x = j->venc;
    AVFrame *in = f;
    int e;

    if (f) {
        int64_t pts = f->best_effort_timestamp;

        if (f->format != AV_PIX_FMT_YUV420P || f->width != x->width || f->height != x->height) {
            /* the odd last column/row is cropped (source size even-rounded), anything
             * else (pixel format, a mid-stream size change) converted */
            int sw = f->width == x->width + 1 ? x->width : f->width;
            int sh = f->height == x->height + 1 ? x->height : f->height;

            j->sws = sws_getCachedContext(j->sws, sw, sh, f->format, x->width, x->height,
                                          AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
            if (j->sws == NULL)
                return r2b_error_set(j->err, R2B_ERR_UNSUPPORTED, "cannot convert %s video frames",
                                     av_get_pix_fmt_name(f->format));
            if (j->vconv == NULL) {
                if ((j->vconv = av_frame_alloc()) == NULL)
                    return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
                j->vconv->format = AV_PIX_FMT_YUV420P;
                j->vconv->width = x->width;
                j->vconv->height = x->height;
                if (av_frame_get_buffer(j->vconv, 0) < 0)
                    return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
            }
            if ((e = av_frame_make_writable(j->vconv)) < 0)
                return output_failed(j, "convert a frame", e);
            sws_scale(j->sws, (const uint8_t *const *)f->data, f->linesize, 0, sh, j->vconv->data,
                      j->vconv->linesize);
            in = j->vconv;
        }
        /* x264 wants strictly increasing timestamps */
        if (pts == AV_NOPTS_VALUE)
            pts = j->last_vpts == AV_NOPTS_VALUE ? 0 : j->last_vpts + 1;
        if (j->last_vpts != AV_NOPTS_VALUE && pts <= j->last_vpts)
            pts = j->last_vpts + 1;
        j->last_vpts = pts;
        if (f->pkt_duration > 0)
            j->last_vdur = f->pkt_duration;
        in->pts = pts;
        in->pict_type = AV_PICTURE_TYPE_NONE;
    }
    if ((e = avcodec_send_frame(x, in)) < 0)
        return output_failed(j, "encode video", e);
    return drain_encoder(j, x, j->ovi);
}

/* Feeds one packet (NULL: flush) to the video decoder; handles the frames that come out. */
static enum r2b_status decode_video(struct av_job *j, const AVPacket *pkt)
{
    int e;

    if (j->copy_v && j->poster_done)
        return R2B_OK; /* remux: the decoder was only needed for the first frame */
    if ((e = avcodec_send_packet(j->vdec, pkt)) < 0 && e != AVERROR_EOF)
        return input_failed(j, "cannot decode video", e);
    for (;;) {
        enum r2b_status st;

        e = avcodec_receive_frame(j->vdec, j->frame);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF)
            break;
        if (e < 0)
            return input_failed(j, "cannot decode video", e);
        if ((uint64_t)j->frame->width * (uint64_t)j->frame->height > j->o->video_max_pixels) {
            av_frame_unref(j->frame);
            return job_reject(j, R2B_REJECT_DIMENSIONS,
                              "%s has a %dx%d frame, more than the %llu pixels allowed", j->r->type,
                              j->frame->width, j->frame->height,
                              (unsigned long long)j->o->video_max_pixels);
        }
        if (!j->poster_done && (st = write_poster(j, j->frame)) != R2B_OK) {
            av_frame_unref(j->frame);
            return st;
        }
        if (!j->copy_v) {
            if (++j->frames > j->o->video_max_frames) {
                av_frame_unref(j->frame);
                return job_reject(j, R2B_REJECT_TOO_LONG,
                                  "%s has more than the %lld frames allowed", j->r->type,
                                  (long long)j->o->video_max_frames);
            }
            st = encode_video(j, j->frame);
            av_frame_unref(j->frame);
            if (st != R2B_OK)
                return st;
        } else {
            av_frame_unref(j->frame);
            break;
        }
    }
    return R2B_OK;
}

/* --- the audio path -----------------------------------------------------------------------------
 */

static enum r2b_status encode_fifo(struct av_job *j, int flush)
{
    AVCodecContext *a = j->aenc;
    int fs = a->frame_size > 0 ? a->frame_size : 1024, e;

    while (av_audio_fifo_size(j->fifo) >= fs || (flush && av_audio_fifo_size(j->fifo) > 0)) {
        int n = av_audio_fifo_size(j->fifo) < fs ? av_audio_fifo_size(j->fifo) : fs;

        av_frame_unref(j->aframe);
        j->aframe->nb_samples = n;
        j->aframe->format = a->sample_fmt;
        j->aframe->sample_rate = a->sample_rate;
        if ((e = av_channel_layout_copy(&j->aframe->ch_layout, &a->ch_layout)) < 0 ||
            (e = av_frame_get_buffer(j->aframe, 0)) < 0)
            return output_failed(j, "allocate audio", e);
        if (av_audio_fifo_read(j->fifo, (void **)j->aframe->data, n) != n)
            return r2b_error_set(j->err, R2B_ERR_IO, "audio buffer underrun");
        j->aframe->pts = j->next_apts;
        j->next_apts += n;
        if ((e = avcodec_send_frame(a, j->aframe)) < 0)
            return output_failed(j, "encode audio", e);
        enum r2b_status st = drain_encoder(j, a, j->oai);

        if (st != R2B_OK)
            return st;
    }
    return R2B_OK;
}

/* Resamples `f` (NULL: flush the resampler) into the FIFO, then encodes full frames. */
static enum r2b_status resample(struct av_job *j, const AVFrame *f)
{
    AVCodecContext *a = j->aenc;
    int e;

    if (f) {
        AVChannelLayout l = {0}; /* _copy() uninits its destination first: never garbage */

        if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
            av_channel_layout_default(&l, f->ch_layout.nb_channels);
        else if (av_channel_layout_copy(&l, &f->ch_layout) < 0)
            return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        if (j->swr == NULL) {
            e = swr_alloc_set_opts2(&j->swr, &a->ch_layout, a->sample_fmt, a->sample_rate, &l,
                                    f->format, f->sample_rate, 0, NULL);
            if (e < 0 || (e = swr_init(j->swr)) < 0) {
                av_channel_layout_uninit(&l);
                return output_failed(j, "set up the resampler", e);
            }
            j->swr_rate = f->sample_rate;
            j->swr_fmt = f->format;
            av_channel_layout_copy(&j->swr_layout, &l);
        } else if (j->swr_rate != f->sample_rate || j->swr_fmt != f->format ||
                   av_channel_layout_compare(&j->swr_layout, &l) != 0) {
            av_channel_layout_uninit(&l);
            return job_reject(j, R2B_REJECT_CORRUPT, "%s changes its audio format mid-stream",
                              j->r->type);
        }
        av_channel_layout_uninit(&l);
    }
    if (j->swr == NULL)
        return R2B_OK;
    for (;;) {
        av_frame_unref(j->aconv);
        j->aconv->format = a->sample_fmt;
        j->aconv->sample_rate = a->sample_rate;
        if ((e = av_channel_layout_copy(&j->aconv->ch_layout, &a->ch_layout)) < 0)
            return output_failed(j, "resample", e);
        if (f) {
            /* FFmpeg's swr_convert_frame needs the layout on the input frame too */
            AVFrame *tmp = av_frame_clone(f);

            if (tmp == NULL)
                return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
            if (tmp->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
                int nc = tmp->ch_layout.nb_channels;

                av_channel_layout_uninit(&tmp->ch_layout);
                av_channel_layout_default(&tmp->ch_layout, nc);
            }
            e = swr_convert_frame(j->swr, j->aconv, tmp);
            av_frame_free(&tmp);
        } else {
            e = swr_convert_frame(j->swr, j->aconv, NULL);
        }
        if (e < 0)
            return output_failed(j, "resample", e);
        if (j->aconv->nb_samples > 0 &&
            av_audio_fifo_write(j->fifo, (void **)j->aconv->data, j->aconv->nb_samples) <
                j->aconv->nb_samples)
            return r2b_error_set(j->err, R2B_ERR_NOMEM, "out of memory");
        if (f || j->aconv->nb_samples == 0)
            break;
    }
    return encode_fifo(j, 0);
}

static enum r2b_status decode_audio(struct av_job *j, const AVPacket *pkt)
{
    int e;

    if ((e = avcodec_send_packet(j->adec, pkt)) < 0 && e != AVERROR_EOF)
        return input_failed(j, "cannot decode audio", e);
    for (;;) {
        enum r2b_status st;

        e = avcodec_receive_frame(j->adec, j->frame);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF)
            break;
        if (e < 0)
            return input_failed(j, "cannot decode audio", e);
        if (!j->apts_set) { /* sound that starts after the picture keeps its place */
            int64_t ts = j->frame->best_effort_timestamp;

            if (ts != AV_NOPTS_VALUE && ts > 0)
                j->next_apts =
                    av_rescale_q(ts, j->in->streams[j->ai]->time_base, j->aenc->time_base);
            j->apts_set = 1;
        }
        st = resample(j, j->frame);
        av_frame_unref(j->frame);
        if (st != R2B_OK)
            return st;
    }
    return R2B_OK;
}

/* --- the whole
 * ------------------------------------------------------------------------------------ */

/*
 * The output starts at 0 whatever the input's start time (as the ffmpeg
 * CLI does): a container starting at 10 s would otherwise get an edit list
 * with 10 s of nothing in front.
 */
static void shift_to_zero(struct av_job *j, AVPacket *pkt)
{
    int64_t off;

    if (j->in->start_time == AV_NOPTS_VALUE || j->in->start_time == 0)
        return;
    off = av_rescale_q(j->in->start_time, AV_TIME_BASE_Q,
                       j->in->streams[pkt->stream_index]->time_base);
    if (pkt->pts != AV_NOPTS_VALUE)
        pkt->pts -= off;
    if (pkt->dts != AV_NOPTS_VALUE)
        pkt->dts -= off;
}

static void note_input_end(struct av_job *j, const AVPacket *pkt)
{
    const AVStream *s;
    int64_t t = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    double end;

    if ((pkt->stream_index != j->vi && pkt->stream_index != j->ai) || t == AV_NOPTS_VALUE)
        return;
    s = j->in->streams[pkt->stream_index];
    /* on the file's own clock: an MP4 whose edit list starts it at 5 s declares 5 s more */
    end = (double)(t + (pkt->duration > 0 ? pkt->duration : 0)) * av_q2d(s->time_base);
    if (end > j->in_end)
        j->in_end = end;
}

/*
 * A truncated upload: the streams stop well before the end the container's
 * header declares (MP4 sample tables, WebM segment info, WAV data size).
 * Durations guessed from the bit rate (MP3 without a Xing header, ADTS) say
 * nothing about that and are not used.
 */
static enum r2b_status check_complete(struct av_job *j)
{
    double declared, slack;

    if (j->in->duration <= 0 || j->in->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
        return R2B_OK;
    declared = (double)j->in->duration / AV_TIME_BASE;
    slack = declared * 0.02 > 0.5 ? declared * 0.02 : 0.5;
    if (j->in_end + slack < declared)
        return job_reject(j, R2B_REJECT_CORRUPT,
                          "%s is truncated: its streams end at %.2f s of the %.2f s its header "
                          "declares",
                          j->r->type, j->in_end, declared);
    return R2B_OK;
}

static enum r2b_status run(struct av_job *j, const char *out_path, int mp3_out)
{
    AVDictionary *mux_opts = NULL;
    enum r2b_status st = R2B_OK;
    int e, header = 0;

    if ((e = avformat_alloc_output_context2(&j->out, NULL, mp3_out ? "mp3" : "mp4", out_path)) < 0)
        return output_failed(j, "set up the output", e);
    /* bitexact: no "encoder" tag, zero creation time (the muxer's own strings) */
    j->out->flags |= AVFMT_FLAG_BITEXACT;
    j->out->interrupt_callback = j->in->interrupt_callback;
    if (j->vi >= 0 && (st = add_video(j)) != R2B_OK)
        goto cleanup;
    if (j->ai >= 0 && (st = add_audio(j, mp3_out)) != R2B_OK)
        goto cleanup;
    if ((e = avio_open2(&j->out->pb, out_path, AVIO_FLAG_WRITE, &j->out->interrupt_callback,
                        NULL)) < 0) {
        st = output_failed(j, "create the output", e);
        goto cleanup;
    }
    if (mp3_out) {
        av_dict_set(&mux_opts, "id3v2_version", "0", 0); /* no ID3 tag at all */
        av_dict_set(&mux_opts, "write_id3v1", "0", 0);
    } else {
        av_dict_set(&mux_opts, "movflags", "+faststart", 0);
    }
    if ((e = avformat_write_header(j->out, &mux_opts)) < 0) {
        st = output_failed(j, "write the output header", e);
        goto cleanup;
    }
    header = 1;
    j->out_start = INFINITY;
    j->out_end = 0;
    for (;;) {
        if (av_gettime_relative() > j->deadline_us) {
            st = input_failed(j, "deadline", AVERROR_EXIT);
            goto cleanup;
        }
        e = av_read_frame(j->in, j->pkt);
        if (e == AVERROR_EOF)
            break;
        if (e < 0) {
            st = input_failed(j, "cannot read", e);
            goto cleanup;
        }
        if ((j->pkt->stream_index == j->vi || j->pkt->stream_index == j->ai) &&
            (j->pkt->flags & AV_PKT_FLAG_CORRUPT)) { /* e.g. cut short by the end of the file */
            st = job_reject(j, R2B_REJECT_CORRUPT,
                            "%s is corrupt or truncated: a damaged packet at "
                            "%.2f s",
                            j->r->type, j->in_end);
            goto cleanup;
        }
        note_input_end(j, j->pkt);
        shift_to_zero(j, j->pkt);
        if (j->pkt->stream_index == j->vi) {
            if ((st = decode_video(j, j->pkt)) != R2B_OK)
                goto cleanup;
            if (j->copy_v) {
                if (++j->frames > j->o->video_max_frames) {
                    st = job_reject(j, R2B_REJECT_TOO_LONG,
                                    "%s has more than the %lld frames allowed", j->r->type,
                                    (long long)j->o->video_max_frames);
                    goto cleanup;
                }
                st = write_packet(j, j->pkt, j->in->streams[j->vi]->time_base, j->ovi);
            }
        } else if (j->pkt->stream_index == j->ai) {
            if (j->copy_a)
                st = write_packet(j, j->pkt, j->in->streams[j->ai]->time_base, j->oai);
            else
                st = decode_audio(j, j->pkt);
        }
        av_packet_unref(j->pkt);
        if (st != R2B_OK)
            goto cleanup;
    }
    /* end of input: flush decoders, resampler, FIFO, encoders */
    if (j->vi >= 0) {
        if ((st = decode_video(j, NULL)) != R2B_OK)
            goto cleanup;
        if (!j->poster_done) {
            st = job_reject(j, R2B_REJECT_CORRUPT, "%s has no decodable video frame", j->r->type);
            goto cleanup;
        }
        if (j->venc && (st = encode_video(j, NULL)) != R2B_OK)
            goto cleanup;
    }
    if (j->ai >= 0 && !j->copy_a) {
        if ((st = decode_audio(j, NULL)) != R2B_OK || (st = resample(j, NULL)) != R2B_OK ||
            (st = encode_fifo(j, 1)) != R2B_OK)
            goto cleanup;
        if ((e = avcodec_send_frame(j->aenc, NULL)) < 0) {
            st = output_failed(j, "encode audio", e);
            goto cleanup;
        }
        if ((st = drain_encoder(j, j->aenc, j->oai)) != R2B_OK)
            goto cleanup;
        if (j->next_apts > 0) { /* the sound's length: the samples encoded */
            double end = (double)j->next_apts / j->aenc->sample_rate;

            if (j->out_start > 0)
                j->out_start = 0;
            if (end > j->out_end)
                j->out_end = end;
        }
    }
    if ((st = check_complete(j)) != R2B_OK)
        goto cleanup;
    if (j->out_end <= 0 && j->frames == 0) {
        st = job_reject(j, R2B_REJECT_CORRUPT, "%s has no decodable %s", j->r->type,
                        j->vi >= 0 ? "video" : "audio");
        goto cleanup;
    }
    if ((e = av_write_trailer(j->out)) < 0) {
        st = output_failed(j, "finish the output", e);
        goto cleanup;
    }
cleanup:
    if (header && st != R2B_OK)
        av_write_trailer(j->out); /* frees the muxer's state; the file is removed by the caller */
    av_dict_free(&mux_opts);
    return st;
}

static void fill_meta(struct av_job *j, const struct r2b_media_style *orig)
{
    struct r2b_media_result *r = j->r;

    r->duration_s = j->out_end > j->out_start ? j->out_end - j->out_start : 0;
    r->bitrate = r->duration_s > 0 ? (int64_t)((double)orig->size_bytes * 8 / r->duration_s) : 0;
    r->frames = j->frames;
    if (j->vi >= 0) {
        const AVCodecParameters *p = j->out->streams[j->ovi]->codecpar;

        r2b_strlcpy(r->video_codec, avcodec_get_name(p->codec_id), sizeof(r->video_codec));
    }
    if (j->ai >= 0) {
        const AVCodecParameters *p = j->out->streams[j->oai]->codecpar;

        r2b_strlcpy(r->audio_codec, avcodec_get_name(p->codec_id), sizeof(r->audio_codec));
        r->audio_channels = p->ch_layout.nb_channels;
        r->audio_sample_rate = p->sample_rate;
    }
}

static enum r2b_status process_av(const char *path, const char *dir,
                                  const struct r2b_media_options *o, struct r2b_media_result *r,
                                  struct r2b_error *err)
{
    struct av_job j;
    struct r2b_media_options gif_opts;
    enum r2b_status st;
    int mp3_out;

    memset(&j, 0, sizeof(j));
    if (strcmp(r->type, "image/gif") == 0) {
        /* gifv: an animated GIF as a silent video, under the animated-GIF pixel limit */
        gif_opts = *o;
        if (gif_opts.gif_max_pixels < gif_opts.video_max_pixels)
            gif_opts.video_max_pixels = gif_opts.gif_max_pixels;
        o = &gif_opts;
        r->gifv = 1;
        r->animated = 1;
        r->kind = R2B_MEDIA_VIDEO;
    }
    j.o = o;
    j.r = r;
    j.err = err;
    j.dir = dir;
    j.vi = j.ai = j.ovi = j.oai = -1;
    j.deadline_us = av_gettime_relative() + (int64_t)o->video_timeout_ms * 1000;
    av_log_set_level(
        AV_LOG_QUIET); /* a hostile file's complaints are not the operator's business */
    j.pkt = av_packet_alloc();
    j.opkt = av_packet_alloc();
    j.frame = av_frame_alloc();
    if (j.pkt == NULL || j.opkt == NULL || j.frame == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = open_input(&j, path)) != R2B_OK || (st = pick_and_validate(&j)) != R2B_OK)
        goto cleanup;
    mp3_out = r->kind == R2B_MEDIA_AUDIO;
    /* the original goes first: the poster (small) is added while it is written */
    if ((st = host->add_style(r, dir, "original", mp3_out ? "audio/mpeg" : "video/mp4",
                              mp3_out ? "mp3" : "mp4", err)) != R2B_OK)
        goto cleanup;
    if ((st = run(&j, r->styles[0].path, mp3_out)) != R2B_OK)
        goto cleanup;
    if ((st = host->digest(&r->styles[0], err)) != R2B_OK)
        goto cleanup;
    if (j.vi >= 0) {
        r->styles[0].width = j.out->streams[j.ovi]->codecpar->width;
        r->styles[0].height = j.out->streams[j.ovi]->codecpar->height;
    }
    fill_meta(&j, &r->styles[0]);
    r->transcoded = (j.vi >= 0 && !j.copy_v) || (j.ai >= 0 && !j.copy_a);
cleanup:
    if (j.out) {
        if (j.out->pb)
            avio_closep(&j.out->pb);
        avformat_free_context(j.out);
    }
    avformat_close_input(&j.in);
    avcodec_free_context(&j.vdec);
    avcodec_free_context(&j.adec);
    avcodec_free_context(&j.venc);
    avcodec_free_context(&j.aenc);
    sws_freeContext(j.sws);
    swr_free(&j.swr);
    av_channel_layout_uninit(&j.swr_layout);
    if (j.fifo)
        av_audio_fifo_free(j.fifo);
    av_frame_free(&j.vconv);
    av_frame_free(&j.aconv);
    av_frame_free(&j.aframe);
    av_frame_free(&j.frame);
    av_packet_free(&j.pkt);
    av_packet_free(&j.opkt);
    return st;
}

/* --- the module's entry point (media_int.h) ------------------------------------------- */

__attribute__((visibility("default"))) const struct r2b_av_module *
r2b_av_module_open(const struct r2b_av_host *h)
{
    static const struct r2b_av_module module = {.process = process_av};

    if (h == NULL || h->abi != R2B_AV_ABI || h->iface == NULL ||
        strcmp(h->iface, R2B_AV_IFACE_ID) != 0 || h->sizes[0] != sizeof(struct r2b_media_options) ||
        h->sizes[1] != sizeof(struct r2b_media_result) || h->sizes[2] != sizeof(struct r2b_error))
        return NULL;
    host = h;
    return &module;
}
