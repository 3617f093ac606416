package VconvMedia;

# Test media made at test time with ffmpeg's lavfi sources, and ffprobe
# results as Perl data.  Nothing binary is committed.
#
#   use VconvMedia qw(make_media probe video_stream audio_stream
#                     frame_count cli);
#
#   my $file = make_media($dir, 'mp4');   # path of a new file in $dir
#   my $p = probe($file);                 # ffprobe -show_streams/-format
#   my $v = video_stream($p);             # first video stream or undef
#   my $a = audio_stream($p);             # first audio stream or undef
#   my $n = frame_count($file);           # decoded video frames
#   my ($exit, $json) = cli($in, $out, 'format=mp4', ...);  # vconv-cli
#
# make_media kinds (2 s, 320x240, 25 fps, 440 Hz sine, unless noted):
#   mp4        H.264 + AAC, moov at the end (not faststart)
#   mkv        H.264 + Opus
#   webm       VP9 + Opus
#   rotated    MOV, H.264, display matrix "rotate 90" (shown 240x320)
#   ts         MPEG-TS, H.264 + AAC (timestamps do not start at 0)
#   odd444     MP4, H.264 4:4:4, 321x241, no audio
#   wav        PCM s16 stereo 48 kHz, no video
#   video_only MP4, H.264, no audio
#   nut        NUT, a valid container not in the default allow-list
#   hls        an .m3u8 playlist naming a local file
#   random     64 KiB of pseudo-random bytes
#   big        MP4, H.264, 1920x1080, 1 s, no audio
# Extra options: make_media($dir, 'mp4', duration => 10, size => '1920x1080',
# rate => 30, name => 'x.mp4').

use strict;
use warnings;

use Exporter 'import';
use File::Spec;
use JSON::PP;

our @EXPORT_OK = qw(make_media probe video_stream audio_stream
                    frame_count cli ffmpeg);

my %kinds = (
    mp4        => ['mp4', 'v+a', '-c:v libx264 -preset ultrafast '
                                . '-pix_fmt yuv420p -c:a aac'],
    mkv        => ['mkv', 'v+a', '-c:v libx264 -preset ultrafast '
                                . '-pix_fmt yuv420p -c:a libopus'],
    webm       => ['webm', 'v+a', '-c:v libvpx-vp9 -deadline realtime '
                                 . '-cpu-used 8 -c:a libopus'],
    ts         => ['ts', 'v+a', '-c:v libx264 -preset ultrafast '
                               . '-pix_fmt yuv420p -c:a aac'],
    odd444     => ['mp4', 'v', '-c:v libx264 -preset ultrafast '
                             . '-pix_fmt yuv444p', '321x241'],
    wav        => ['wav', 'a', '-c:a pcm_s16le -ar 48000 -ac 2'],
    video_only => ['mp4', 'v', '-c:v libx264 -preset ultrafast '
                             . '-pix_fmt yuv420p'],
    nut        => ['nut', 'v+a', '-c:v mpeg4 -c:a pcm_s16le'],
    big        => ['mp4', 'v', '-c:v libx264 -preset ultrafast '
                             . '-pix_fmt yuv420p', '1920x1080', 1],
);

my $seq = 0;


# Runs ffmpeg quietly; dies with its stderr on failure.
sub ffmpeg {
    my ($args) = @_;
    my $out = `ffmpeg -nostdin -hide_banner -loglevel error -y $args 2>&1`;
    die "ffmpeg $args: $out" if $?;
    return $out;
}


sub make_media {
    my ($dir, $kind, %o) = @_;

    $seq++;
    my $name = $o{name};

    if ($kind eq 'random') {
        my $f = File::Spec->catfile($dir, $name // "random$seq.bin");
        srand(42);
        open my $fh, '>:raw', $f or die "$f: $!";
        print $fh pack('C*', map { int rand 256 } 1 .. 65536);
        close $fh;
        return $f;
    }

    if ($kind eq 'hls') {
        my $seg = make_media($dir, 'ts');
        my $f = File::Spec->catfile($dir, $name // "list$seq.m3u8");
        open my $fh, '>', $f or die "$f: $!";
        print $fh "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n",
                  "#EXTINF:2.0,\n$seg\n#EXT-X-ENDLIST\n";
        close $fh;
        return $f;
    }

    if ($kind eq 'rotated') {
        # ffmpeg 5.1 writes the matrix only from a stream-copied
        # "rotate" tag, so encode first, then copy with the tag
        my $tmp = make_media($dir, 'video_only', %o, name => "pre$seq.mp4");
        my $f = File::Spec->catfile($dir, $name // "rotated$seq.mov");
        ffmpeg("-i $tmp -c copy -metadata:s:v:0 rotate=90 $f");
        unlink $tmp;
        return $f;
    }

    my $k = $kinds{$kind} or die "make_media: unknown kind $kind";
    my ($ext, $what, $codecs, $size, $dur) = @$k;

    $size = $o{size} // $size // '320x240';
    $dur = $o{duration} // $dur // 2;
    my $rate = $o{rate} // 25;

    my $f = File::Spec->catfile($dir, $name // "$kind$seq.$ext");
    my $in = '';
    $in .= "-f lavfi -i testsrc2=size=$size:rate=$rate:duration=$dur "
        if $what =~ /v/;
    $in .= "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$dur "
        if $what =~ /a/;

    ffmpeg("$in $codecs -t $dur $f");

    return $f;
}


sub probe {
    my ($file, @extra) = @_;
    my $json = `ffprobe -v error -show_streams -show_format @extra -of json '$file'`;
    return undef if $? || !length $json;
    return decode_json($json);
}


sub _stream {
    my ($p, $type) = @_;
    return undef unless $p && $p->{streams};
    for my $s (@{ $p->{streams} }) {
        return $s if $s->{codec_type} eq $type;
    }
    return undef;
}

sub video_stream { _stream($_[0], 'video') }
sub audio_stream { _stream($_[0], 'audio') }


sub frame_count {
    my ($file) = @_;
    my $p = probe($file, '-count_frames', '-select_streams', 'v:0');
    my $v = video_stream($p) or return 0;
    return $v->{nb_read_frames} // 0;
}


# Runs build/vconv-cli; returns (exit status, decoded JSON or undef).
sub cli {
    my (@args) = @_;
    my $build = $ENV{VCONV_BUILD} // 'build';
    my $bin = "$build/vconv-cli";
    my @cmd = ($bin, @args);
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        exec @cmd or exit 127;
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    my $exit = $? >> 8;
    my $json = eval { decode_json($out) };
    return ($exit, $json, $out);
}

1;
