# vconv-cli: every output format, checked with ffprobe.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

use VconvMedia qw(make_media probe video_stream audio_stream frame_count
                  cli);

my $dir = tempdir(CLEANUP => 1);
my $in = make_media($dir, 'mp4');     # 2 s, 320x240, 25 fps, AAC 48 kHz

sub near {
    my ($got, $want, $tol, $name) = @_;
    ok(defined $got && abs($got - $want) <= $tol,
       "$name: " . ($got // 'undef') . " ~ $want");
}

# top-level MP4 box names in file order
sub mp4_boxes {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    my @boxes;
    my $pos = 0;
    my $size = -s $file;
    while ($pos + 8 <= $size) {
        seek $fh, $pos, 0;
        read($fh, my $h, 16) >= 8 or last;
        my ($len, $type) = unpack 'Na4', $h;
        $len = unpack 'x8Q>', $h if $len == 1;
        last if $len < 8;
        push @boxes, $type;
        $pos += $len;
    }
    return @boxes;
}

# animated WebP: (canvas width, height, number of ANMF frames)
sub webp_info {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    my $d = <$fh>;
    return () unless substr($d, 0, 4) eq 'RIFF' && substr($d, 8, 4) eq 'WEBP';
    my ($pos, $w, $h, $frames) = (12, 0, 0, 0);
    while ($pos + 8 <= length $d) {
        my ($id, $len) = unpack 'a4V', substr($d, $pos, 8);
        if ($id eq 'VP8X') {
            my $c = substr($d, $pos + 8, 10);
            $w = 1 + unpack('V', substr($c, 4, 3) . "\0");
            $h = 1 + unpack('V', substr($c, 7, 3) . "\0");
        }
        $frames++ if $id eq 'ANMF';
        $pos += 8 + $len + ($len & 1);
    }
    return ($w, $h, $frames);
}

sub convert {
    my ($fmt, @opts) = @_;
    my $out = "$dir/out-$fmt-" . scalar(@opts) . ".$fmt";
    my ($exit, $res, $raw) = cli($in, $out, "format=$fmt", @opts);
    is($exit, 0, "$fmt: exit 0") or diag $raw;
    ok($res && $res->{ok}, "$fmt: ok") or diag $raw;
    is($res->{output_bytes}, -s $out, "$fmt: output_bytes is the size");
    # ffmpeg 5.1 cannot read animated WebP: webp_info() checks those
    return ($out, $fmt eq 'webp' ? undef : probe($out));
}

# video formats: container, codecs, size, pixel format, duration, frames
my %video = (
    mp4  => ['mp4', 'h264', 'aac', 48000],
    mov  => ['mov', 'h264', 'aac', 48000],
    mkv  => ['matroska', 'h264', 'aac', 48000],
    webm => ['webm', 'vp9', 'opus', 48000],
);

for my $fmt (sort keys %video) {
    my ($cont, $vc, $ac, $rate) = @{ $video{$fmt} };
    my ($out, $p) = convert($fmt);
    like($p->{format}{format_name}, qr/\b$cont\b/, "$fmt: container");
    my $v = video_stream($p);
    my $a = audio_stream($p);
    is($v->{codec_name}, $vc, "$fmt: video codec");
    is("$v->{width}x$v->{height}", '320x240', "$fmt: size kept");
    is($v->{pix_fmt}, 'yuv420p', "$fmt: pix_fmt");
    is($a->{codec_name}, $ac, "$fmt: audio codec");
    is($a->{sample_rate}, $rate, "$fmt: sample rate");
    near($p->{format}{duration}, 2.0, 0.05, "$fmt: duration");
    is(frame_count($out), 50, "$fmt: every frame");

    if ($fmt eq 'mp4' || $fmt eq 'mov') {
        my @b = grep { $_ eq 'moov' || $_ eq 'mdat' } mp4_boxes($out);
        is("@b", 'moov mdat', "$fmt: faststart, moov before mdat");
    }
}

# animations
{
    my ($out, $p) = convert('gif', 'fps=10');
    my $v = video_stream($p);
    is($p->{format}{format_name}, 'gif', 'gif: container');
    is($v->{codec_name}, 'gif', 'gif: codec');
    is("$v->{width}x$v->{height}", '320x240', 'gif: size kept');
    is(audio_stream($p), undef, 'gif: no audio');
    near(frame_count($out), 20, 1, 'gif: 10 fps for 2 s');

    ($out, $p) = convert('gif', 'fps=10', 'width=160');
    $v = video_stream($p);
    is("$v->{width}x$v->{height}", '160x120', 'gif: width=160');
}

{
    my ($out) = convert('webp', 'fps=10', 'width=160');
    my ($w, $h, $frames) = webp_info($out);
    is("$w x $h", '160 x 120', 'webp: canvas size');
    near($frames, 20, 1, 'webp: animation frames');
}

# audio formats
my %audio = (
    mp3  => ['mp3', 'mp3', 0.1],
    m4a  => ['mp4', 'aac', 0.05],
    opus => ['ogg', 'opus', 0.05],
    ogg  => ['ogg', 'vorbis', 0.05],
    wav  => ['wav', 'pcm_s16le', 0.05],
    flac => ['flac', 'flac', 0.05],
);

for my $fmt (sort keys %audio) {
    my ($cont, $ac, $tol) = @{ $audio{$fmt} };
    my ($out, $p) = convert($fmt);
    like($p->{format}{format_name}, qr/\b$cont\b/, "$fmt: container");
    is(video_stream($p), undef, "$fmt: no video");
    my $a = audio_stream($p);
    is($a->{codec_name}, $ac, "$fmt: codec");
    near($p->{format}{duration}, 2.0, $tol, "$fmt: duration");
}

# images: one frame
for my $t (['jpg', 'mjpeg', 'yuvj420p'], ['png', 'png', 'rgb24']) {
    my ($fmt, $codec, $pix) = @$t;
    my ($out, $p) = convert($fmt);
    my $v = video_stream($p);
    is($v->{codec_name}, $codec, "$fmt: codec");
    is("$v->{width}x$v->{height}", '320x240', "$fmt: size");
    is($v->{pix_fmt}, $pix, "$fmt: pix_fmt");
    is(frame_count($out), 1, "$fmt: one frame");

    ($out, $p) = convert($fmt, 'start=1', 'width=160');
    $v = video_stream($p);
    is("$v->{width}x$v->{height}", '160x120', "$fmt: start=1 width=160");
}

done_testing();
